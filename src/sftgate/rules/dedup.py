"""Duplicate rules (DUP): exact and near-duplicate examples, conflicting answers, repeated prompts.

The four rules share one analysis of a file's features (`analyse`), done once per file:

1. Exact groups: examples with the same exact key (system instruction and every turn, after
   NFC, whitespace collapsing and the profile's case and punctuation folding).
2. Near-duplicate candidates: one example per exact group with any text goes through MinHash
   LSH (`analysis.minhash`, `analysis.lsh`); buckets give star edges.
3. Verification: every candidate edge is checked on the two examples' actual tokens, the prompt
   side and the response side separately (`analysis.similarity`). A pair is a near-duplicate
   only when *both* sides are similar and neither side had a span of text replaced by other
   text: a shared template or document with a different question or sentence is a different
   example.
4. Clusters: connected components of exact and verified edges (`analysis.unionfind`). One
   member survives by the profile's policy; every other member gets a DUP001 or DUP002 finding
   naming the record it was matched to (its neighbour on the way to the survivor) and the
   measured similarity.

Conflicts (DUP003) and repeated prompts (DUP004) group examples by the exact key of their
prompt (everything before the last model turn).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import orjson

from sftgate.analysis.arrays import unique
from sftgate.analysis.heap import give_back
from sftgate.analysis.lsh import BandMap, probability, star_edges
from sftgate.analysis.similarity import changed_span, compare, overlap
from sftgate.analysis.unionfind import components
from sftgate.model import Action, Finding, FindingColumns, Severity
from sftgate.rules.base import DatasetRule, RuleContext, iter_family_findings

CURVE_POINTS = (0.5, 0.7, 0.8, 0.9)


@dataclass(frozen=True)
class Verification:
    """How candidate pairs are verified (`dedup.near` in the profile)."""

    similarity: float  # both sides must reach it
    max_changed_span: int  # tokens replaced at one place, per side, at most
    containment_min_tokens: int  # containment counts only for sides at least this long
    containment_min_ratio: float  # ... and only when the shorter side is this share of the longer
    prompt_only: bool = False  # compare the prompt sides only (a bare prompt against an example)

    @classmethod
    def from_profile(cls, near: Mapping[str, Any]) -> Verification:
        return cls(float(near["similarity"]), int(near["max_changed_span"]), int(near["containment_min_tokens"]),
                   float(near["containment_min_ratio"]))

    def side_score(self, a: list[int], b: list[int]) -> float:
        """The best of edit similarity, containment (when allowed) and token-set overlap."""
        return self._side(a, b)[0]

    def _side(self, a: list[int], b: list[int]) -> tuple[float, int]:
        # (score, replaced_at_most); the token-set overlap, the costliest measure, only when
        # the others fall short.
        m = compare(a, b)
        score = m.similarity
        if m.shorter >= self.containment_min_tokens and m.shorter >= self.containment_min_ratio * max(len(a), len(b)):
            score = max(score, m.containment)
        if score < self.similarity:
            score = max(score, overlap(a, b))
        return score, m.replaced_at_most

    def match(self, a: tuple[list[int], list[int]], b: tuple[list[int], list[int]]) -> float | None:
        """The pair's similarity (the lower side's score), or None when it is not a near-duplicate."""
        prompt, prompt_bound = self._side(a[0], b[0])
        if prompt < self.similarity:
            return None
        limit = self.max_changed_span
        if self.prompt_only:
            if prompt_bound > limit and changed_span(a[0], b[0]) > limit:
                return None
            return prompt
        response, response_bound = self._side(a[1], b[1])
        if response < self.similarity:
            return None
        # The alignment is walked only when a side may have replaced more than the limit.
        if prompt_bound > limit and changed_span(a[0], b[0]) > limit:
            return None
        if response_bound > limit and changed_span(a[1], b[1]) > limit:
            return None
        return min(prompt, response)


_ABSENT = object()


@dataclass(frozen=True)
class SourcePreference:
    """`dedup.source` (survivor policy `source`): a field of each record, named by a JSON
    pointer into the record as read, and the values whose records a duplicate cluster keeps
    first. A record's rank is the position of its value among `prefer`; a record with another
    value, or without the field, ranks after all of them (`len(prefer)`)."""

    pointer: str
    prefer: tuple[Any, ...]
    then: str  # among members of equal rank: first | longest
    _path: tuple[str, ...] = ()
    _ranks: Mapping[bytes, int] = field(default_factory=dict)

    @classmethod
    def from_profile(cls, section: Mapping[str, Any]) -> SourcePreference | None:
        """The preference of a `dedup:` section; None unless its survivor policy is `source`.
        Raises ValueError naming the key when the section does not say what to prefer."""
        if section["survivor"] != "source":
            return None
        spec = section.get("source") or {}
        pointer = spec.get("field")
        if not isinstance(pointer, str) or not pointer.startswith("/"):
            raise ValueError("/dedup/source/field: survivor `source` needs the JSON pointer of the field that "
                             "names a record's source, such as /source or /metadata/origin")
        prefer = tuple(spec.get("prefer") or ())
        if not prefer:
            raise ValueError("/dedup/source/prefer: survivor `source` needs the preferred values, most preferred first")
        ranks: dict[bytes, int] = {}
        for i, value in enumerate(prefer):
            ranks.setdefault(_canonical(value), i)
        path = tuple(p.replace("~1", "/").replace("~0", "~") for p in pointer[1:].split("/"))
        return cls(pointer, prefer, str(spec.get("then", "first")), path, ranks)

    @property
    def unranked(self) -> int:
        return len(self.prefer)

    def rank(self, record: Any) -> int:
        """The record's rank: 0 for the most preferred value."""
        value = record
        for key in self._path:
            if type(value) is dict:
                value = value.get(key, _ABSENT)
            elif type(value) is list and key.isdigit() and (key == "0" or key[0] != "0") and int(key) < len(value):
                value = value[int(key)]
            else:
                return self.unranked
            if value is _ABSENT:
                return self.unranked
        return self._ranks.get(_canonical(value), self.unranked)

    def value(self, rank: int) -> Any:
        """The preferred value of a rank; None for a record with none of them."""
        return self.prefer[rank] if rank < len(self.prefer) else None

    def settings(self) -> dict[str, Any]:
        return {"field": self.pointer, "prefer": list(self.prefer), "then": self.then}


def _canonical(value: Any) -> bytes:
    """A JSON value as compared with the preferred values: 2 and 2.0 are one value, "2" another."""
    if type(value) is float and value.is_integer():
        value = int(value)
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    except TypeError:  # an integer beyond 64 bits
        return repr(value).encode()


class TokenSource(Protocol):
    """What the analysis reads besides the feature columns: the tokens of one record.

    A source may also have `token_arrays(records)`, which `token_arrays` below calls to read
    many records at once."""

    def tokens(self, record: int) -> tuple[list[int], list[int]]: ...


@dataclass
class Cluster:
    survivor: int  # record index
    members: list[tuple[int, int, float, str]]  # (record, matched record, similarity, code), survivor excluded


@dataclass
class DuplicateAnalysis:
    """Everything the DUP rules report, for one file."""

    source: str
    lines: np.ndarray  # record index -> line
    records: int
    without_text: int  # records compared exactly only: they have no text to shingle
    candidates: int = 0  # candidate edges from LSH
    verified: int = 0  # of which verified near-duplicates
    skipped: int = 0  # of which not verified: their records were already in one cluster
    # The clusters as `cluster_rows` gives them but for the labels (record, matched, similarity,
    # exact; by label then record) and where each cluster's rows start: arrays, not a Python
    # object a member (a file of near-duplicates has about one member a record). `clusters`
    # and `largest` make `Cluster`s of them.
    rows: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None
    starts: np.ndarray = field(default_factory=lambda: np.zeros(1, dtype=np.int64))
    conflicts: list[list[tuple[str, list[int]]]] = field(default_factory=list)  # [(answer, records)]
    repeated: list[tuple[int, list[int]]] = field(default_factory=list)  # (count, records)
    exact_dropped: int = 0
    near_dropped: int = 0
    settings: dict[str, Any] = field(default_factory=dict)
    # (member, the record it matched) of every cluster member but the survivors, as in `clusters`,
    # with the similarity of the match and whether it was exact
    matched: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), dtype=np.int64))
    scores: np.ndarray = field(default_factory=lambda: np.zeros(0))
    exact: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    preference: SourcePreference | None = None  # survivor policy `source`
    rank: np.ndarray | None = None  # with it: each record's source rank

    def where(self, record: int) -> str:
        return f"{self.source}:{int(self.lines[record])}"

    @property
    def cluster_count(self) -> int:
        return self.starts.size - 1

    @property
    def clusters(self) -> list[Cluster]:
        """Every cluster, in the order of their labels (their smallest records), made anew at
        each call: a Python object a member."""
        return self._clusters(np.arange(self.cluster_count))

    def largest(self, k: int) -> list[Cluster]:
        """The `k` largest clusters, ties by survivor: what the report lists."""
        if self.rows is None:
            return []
        nodes, matched, _, _ = self.rows
        sizes = np.diff(self.starts)
        return self._clusters(np.lexsort((nodes[matched < 0], -sizes))[:k])

    def _clusters(self, which: np.ndarray) -> list[Cluster]:
        if self.rows is None:
            return []
        nodes, matched, scores, exact = self.rows
        out = []
        for k in which.tolist():
            lo, hi = int(self.starts[k]), int(self.starts[k + 1])
            member = matched[lo:hi] >= 0
            survivor = int(nodes[lo:hi][~member][0])
            codes = np.where(exact[lo:hi][member], "DUP001", "DUP002").tolist()
            out.append(Cluster(survivor, list(zip(nodes[lo:hi][member].tolist(), matched[lo:hi][member].tolist(),
                                                  scores[lo:hi][member].tolist(), codes, strict=True))))
        return out

    def dropped(self, rule: type[DatasetRule], message: str) -> FindingColumns:
        """A finding of `rule` (DUP001: exact, DUP002: near) for every cluster member it drops,
        in the order of `clusters`; `message` is the findings' (see `FindingColumns`)."""
        chosen = self.exact if rule.code == ExactDuplicate.code else ~self.exact
        lines = self.lines
        return FindingColumns(rule.code, rule.default_severity, self.source, message, lines[self.matched[chosen, 0]],
                              lines[self.matched[chosen, 1]], self.scores[chosen])


def analyse(
    *,
    source: str,
    lines: np.ndarray,
    columns: Mapping[str, np.ndarray],
    tokens: TokenSource,
    snippets: list[str],
    section: Mapping[str, Any],
    bands: int,
    rows: int,
    selected: frozenset[str],
    verify: EdgeVerifier | None = None,
    eligible: np.ndarray | None = None,
    clusterer: Clusterer | None = None,
    band_map: BandMap | None = None,
) -> DuplicateAnalysis:
    """Cluster a file's examples and find conflicts and repeated prompts (see the module doc).

    `verify` scores candidate edges; the engine passes one that spreads them over its worker
    processes. It must return what `verify_edges` returns. `eligible` (bool per record): the
    records that may survive a cluster; a record that goes to the quarantine anyway (a finding
    whose action is drop) survives only when no member of its cluster is eligible, so a
    cluster is not lost because its first member is broken. With the survivor policy `source`,
    `columns["rank"]` holds each record's `SourcePreference.rank`. `clusterer` makes the
    clusters' rows from the edges (`cluster_rows`, which it must equal); the Ray executor
    passes one that spreads large edge lists over the cluster. `band_map` maps the LSH
    bucketing over groups of bands (`analysis.lsh.map_bands`, which it must equal).
    """
    exact = columns["exact"]
    n = exact.size
    total_tokens = columns["prompt_tokens"] + columns["response_tokens"]
    out = DuplicateAnalysis(source=source, lines=lines, records=n, without_text=int((total_tokens == 0).sum()))
    near = section["near"]
    out.settings = {
        "num_perm": int(near["num_perm"]), "bands": bands, "rows": rows, "threshold": float(near["threshold"]),
        "similarity": float(near["similarity"]), "max_changed_span": int(near["max_changed_span"]),
        "shingle": dict(near["shingle"]), "system": bool(near["system"]), "survivor": section["survivor"],
        "detection_curve": {str(s): round(probability(s, bands, rows), 4) for s in CURVE_POINTS},
    }
    policy = section["survivor"]
    preference = out.preference = SourcePreference.from_profile(section)
    if preference is not None:
        out.settings["source"] = preference.settings()
        out.rank = columns["rank"]
        policy = preference.then
    if n == 0:
        return out
    index = np.arange(n, dtype=np.int64)
    _, first, inverse = np.unique(exact, return_index=True, return_inverse=True)
    rep = first[inverse.ravel()]
    exact_edges = np.stack((rep[rep != index], index[rep != index]), axis=1)

    near_edges, near_scores = np.zeros((0, 2), dtype=np.int64), np.zeros(0)
    if "DUP002" in selected:
        verification = Verification.from_profile(near)
        candidates = index[(rep == index) & (total_tokens > 0)]
        edges = star_edges(columns["bands"], candidates, band_map, rows=candidates)
        media = columns["media"]
        edges = edges[media[edges[:, 0]] == media[edges[:, 1]]]  # different media: different examples
        out.candidates = int(edges.shape[0])
        give_back()  # each step's temporaries: the next step's are of other sizes (`analysis.heap`)
        near_edges, near_scores, out.skipped = verify_spanning(edges, n, tokens, verification,
                                                               verify or verify_edges)
        out.verified = int(near_edges.shape[0])
        give_back()

    if "DUP001" in selected or "DUP002" in selected:
        _cluster(out, n, exact_edges, near_edges, near_scores, policy, total_tokens, eligible, out.rank, clusterer)
        give_back()
    if "DUP003" in selected:
        out.conflicts = _conflicts(columns, tokens, snippets, Verification.from_profile(near))
    if "DUP004" in selected:
        limit = int(section["prompt_repeats"])
        out.repeated = _repeated(columns["prompt"], limit)
    return out


EdgeVerifier = Callable[[np.ndarray, TokenSource, Verification], np.ndarray]

SPANNING_BLOCK = 1 << 15  # candidate edges verified per round after the first


def verify_spanning(edges: np.ndarray, n: int, tokens: TokenSource, verification: Verification,
                    verify: EdgeVerifier) -> tuple[np.ndarray, np.ndarray, int]:
    """Verify candidate edges (m, 2), (first, later) records, only as far as clustering needs:
    (verified edges (k, 2), their similarities, how many candidates were skipped).

    Clusters are the connected components of the verified edges, and an edge between two
    records already in one component cannot change them; so it is skipped, not verified. The
    first round verifies each record's edge to its earliest candidate (these form a forest, so
    none is redundant); later rounds take the next `SPANNING_BLOCK` edges whose records the
    verified edges have not yet joined. In duplicate-heavy data, where every copy is a
    candidate of every other, this verifies about one edge per copy instead of all of them.
    The rounds depend on the data only, never on the number of workers: the result is the same.
    """
    if not edges.shape[0]:
        return edges, np.zeros(0), 0
    by_later = np.lexsort((edges[:, 0], edges[:, 1]))
    head = np.ones(by_later.size, dtype=bool)
    head[1:] = edges[by_later[1:], 1] != edges[by_later[:-1], 1]
    first_round = np.zeros(edges.shape[0], dtype=bool)
    first_round[by_later[head]] = True
    labels = np.arange(n, dtype=np.int64)
    found: list[np.ndarray] = []
    found_scores: list[np.ndarray] = []
    checked = 0

    def run(block: np.ndarray) -> None:
        nonlocal labels, checked
        checked += block.shape[0]
        scores = verify(block, tokens, verification)
        kept = ~np.isnan(scores)
        if kept.any():
            found.append(block[kept])
            found_scores.append(scores[kept])
            joined = labels[block[kept]]
            labels = components(n, joined)[labels]  # joins components, labels stay the smallest member

    run(edges[first_round])
    rest = edges[~first_round]
    while rest.shape[0]:
        rest = rest[labels[rest[:, 0]] != labels[rest[:, 1]]]
        run(rest[:SPANNING_BLOCK])
        rest = rest[SPANNING_BLOCK:]
    if not found:
        return np.zeros((0, 2), dtype=np.int64), np.zeros(0), edges.shape[0] - checked
    out = np.concatenate(found)
    order = np.lexsort((out[:, 1], out[:, 0]))
    return out[order], np.concatenate(found_scores)[order], edges.shape[0] - checked


def verify_edges(edges: np.ndarray, tokens: TokenSource, verification: Verification) -> np.ndarray:
    """Score each candidate edge (m, 2): its similarity, or NaN when it is not a near-duplicate.

    Blocks of edges are scored by the compiled `analysis.kernels.match_edges` over their
    records' tokens read in one go; the few edges it flags (a changed span to measure, a side
    too long for it) are finished here with `Verification.match`'s own measures."""
    from sftgate.analysis import kernels  # numba, loaded with the first verification

    v = verification
    scores = np.full(edges.shape[0], np.nan)
    for lo in range(0, edges.shape[0], _BLOCK_EDGES):
        block = edges[lo:lo + _BLOCK_EDGES]
        records = unique(block.ravel())
        values, prompt, response = token_arrays(tokens, records)
        start = np.cumsum(prompt + response) - (prompt + response)
        local = np.searchsorted(records, block)
        got, flags = kernels.match_edges(local, values, start, prompt, response, v.similarity, v.max_changed_span,
                                         v.containment_min_tokens, v.containment_min_ratio, v.prompt_only)
        for i in np.flatnonzero(flags).tolist():
            sides = []
            for r in local[i].tolist():
                at, p = int(start[r]), int(prompt[r])
                sides.append((values[at:at + p].tolist(), values[at + p:at + p + int(response[r])].tolist()))
            a, b = sides
            if flags[i] & kernels.FALLBACK:
                score = v.match(a, b)
                got[i] = np.nan if score is None else score
            elif (flags[i] & kernels.SPAN_PROMPT and changed_span(a[0], b[0]) > v.max_changed_span) or \
                    (flags[i] & kernels.SPAN_RESPONSE and changed_span(a[1], b[1]) > v.max_changed_span):
                got[i] = np.nan
        scores[lo:lo + block.shape[0]] = got
    return scores


_BLOCK_EDGES = 1 << 14  # edges verified per kernel call: their records' tokens are read at once


def token_arrays(tokens: TokenSource, records: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(tokens uint32, prompt-side counts, response-side counts) of some records (sorted,
    distinct): each record's prompt side then its response side, record after record."""
    read = getattr(tokens, "token_arrays", None)
    if read is not None:
        return read(records)
    sides = [tokens.tokens(r) for r in records.tolist()]
    values = [t for prompt, response in sides for t in (*prompt, *response)]
    return (np.array(values, dtype=np.uint32), np.array([len(p) for p, _ in sides], dtype=np.int64),
            np.array([len(r) for _, r in sides], dtype=np.int64))


def _cluster(out: DuplicateAnalysis, n: int, exact_edges: np.ndarray, near_edges: np.ndarray,
             near_scores: np.ndarray, policy: str, total_tokens: np.ndarray,
             eligible: np.ndarray | None = None, rank: np.ndarray | None = None,
             clusterer: Clusterer | None = None) -> None:
    edges = np.concatenate((exact_edges, near_edges))
    if edges.size == 0:
        return
    exact = np.arange(edges.shape[0]) < exact_edges.shape[0]
    score = np.concatenate((np.ones(exact_edges.shape[0]), near_scores))
    # Each record's keys for the survivor choice: tokens, source rank, not eligible.
    keys = np.stack((total_tokens, rank if rank is not None else np.zeros(n, dtype=np.int64),
                     ~eligible if eligible is not None else np.zeros(n, dtype=bool)), axis=1).astype(np.int64)
    nodes, label, matched, scores, exact_of = (clusterer or cluster_rows)(edges, exact, score, keys, policy,
                                                                          rank is not None)
    out.rows = (nodes, matched, scores, exact_of)
    out.starts = np.r_[0, np.flatnonzero(np.diff(label)) + 1, nodes.size]
    dropped = matched >= 0  # every member but the survivors
    out.matched = np.stack((nodes[dropped], matched[dropped]), axis=1)
    out.scores, out.exact = scores[dropped], exact_of[dropped]
    out.exact_dropped = int(out.exact.sum())
    out.near_dropped = int(dropped.sum()) - out.exact_dropped


ClusterRows = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]
Clusterer = Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray, str, bool], ClusterRows]


def cluster_rows(edges: np.ndarray, exact: np.ndarray, score: np.ndarray, keys: np.ndarray, policy: str,
                 ranked: bool) -> ClusterRows:
    """The clusters of some edges (m, 2) of records, each exact or with its similarity, as rows
    (record, cluster label: its smallest record, the record it matched or -1 for the survivor,
    the similarity and exactness of that match), one per record the edges name, sorted by
    label then record.

    `keys` (n, 3), by record, holds its total tokens, source rank (`ranked`) and whether it may
    not survive. The survivor of a cluster: of its members that may survive (all when none
    may), those of the most preferred source (when ranked), then the first, or the one with
    most tokens (policy `longest`; the first of those). Every other member names its neighbour
    on a breadth-first walk from the survivor that prefers exact edges, then the most similar,
    then the earliest record.

    Clusters do not depend on each other: the rows of edges cut along clusters (the Ray
    executor's `groupby`) are these rows, cut the same way."""
    from sftgate.analysis import kernels  # numba

    nodes, inverse = np.unique(edges, return_inverse=True)  # records in order; local ids keep it
    local = inverse.reshape(-1, 2)
    del inverse
    k = nodes.size
    node_keys = keys[nodes]
    labels = components(k, local)
    # Every edge both ways, each node's in the order the walk prefers them: exact edges first,
    # then the most similar, then the earliest record. (Each intermediate goes as soon as it
    # is used: this is the driver's peak in duplicate-heavy data.)
    src, others = np.concatenate((local[:, 0], local[:, 1])), np.concatenate((local[:, 1], local[:, 0]))
    del local
    exact2, score2 = np.tile(exact, 2), np.tile(score, 2)
    order = np.lexsort((others, -score2, ~exact2, src))
    src, others, score2, exact2 = src[order], others[order], score2[order], exact2[order]
    del order
    starts = np.searchsorted(src, np.arange(k + 1))
    del src
    ids = np.arange(k)
    sort_keys = [ids, -node_keys[:, 0]] if policy == "longest" else [ids]
    if ranked:
        sort_keys.append(node_keys[:, 1])
    sort_keys.append(node_keys[:, 2])
    pick = np.lexsort((*sort_keys, labels))
    heads = np.flatnonzero(np.r_[True, labels[pick][1:] != labels[pick][:-1]])
    matched, via = kernels.walk_clusters(starts, others, pick[heads])
    grouped = np.lexsort((ids, labels))  # by label, then record
    reached = matched[grouped] >= 0
    edge = np.where(reached, via[grouped], 0)
    return (nodes[grouped], nodes[labels[grouped]], np.where(reached, nodes[matched[grouped]], -1),
            np.where(reached, score2[edge], 0.0), reached & exact2[edge])


def _conflicts(columns: Mapping[str, np.ndarray], tokens: TokenSource, snippets: list[str],
               verify: Verification) -> list[list[tuple[str, list[int]]]]:
    prompt, response = columns["prompt"], columns["response"]
    order = np.lexsort((np.arange(prompt.size), prompt))
    sorted_prompt = prompt[order]
    starts = np.flatnonzero(np.concatenate(([True], sorted_prompt[1:] != sorted_prompt[:-1])))
    ends = np.append(starts[1:], order.size)
    groups = []
    for s, e in zip(starts.tolist(), ends.tolist(), strict=True):
        if e - s < 2:
            continue
        records = order[s:e]
        if unique(response[records]).size < 2:
            continue
        # Answers: distinct response keys, merged when their texts are near-duplicates.
        answers: list[tuple[int, list[int]]] = []  # (representative record, records)
        by_key: dict[int, int] = {}
        for r in records.tolist():
            key = int(response[r])
            if key in by_key:
                answers[by_key[key]][1].append(r)
                continue
            mine = tokens.tokens(r)[1]
            for i, (rep, _) in enumerate(answers):
                if verify.side_score(mine, tokens.tokens(rep)[1]) >= verify.similarity:
                    by_key[key] = i
                    answers[i][1].append(r)
                    break
            else:
                by_key[key] = len(answers)
                answers.append((r, [r]))
        if len(answers) > 1:
            groups.append([(snippets[rep], members) for rep, members in answers])
    groups.sort(key=lambda g: min(min(m) for _, m in g))
    return groups


def _repeated(prompt: np.ndarray, limit: int) -> list[tuple[int, list[int]]]:
    counts = Counter(prompt.tolist())
    heavy = {key for key, c in counts.items() if c > limit}
    if not heavy:
        return []
    members: dict[int, list[int]] = defaultdict(list)
    for r, key in enumerate(prompt.tolist()):
        if key in heavy:
            members[key].append(r)
    return sorted(((len(m), m) for m in members.values()), key=lambda x: x[1][0])


# --- the rules ---------------------------------------------------------------------------------


class ExactDuplicate(DatasetRule):
    """## What it does
    Flags an example identical to another one (system instruction and every turn) after
    normalisation.

    Normalisation is Unicode NFC with runs of whitespace collapsed and case folded; punctuation
    folding is optional. One example of each group survives, by the survivor policy; the
    finding names the copy it matched.

    ## Why is this bad?
    Repeated examples are trained on several times per epoch: the model memorises them instead
    of generalising, and they cost training tokens for nothing.

    ## Example
    Lines 3 and 40 hold the same conversation, one saying "Hello" and one "hello ": line 40 is
    an exact duplicate of line 3.
    Use instead: keep one copy (`sftgate prepare` drops the others).

    ## Options
    - `dedup.exact.case`: fold case before comparing (default true).
    - `dedup.exact.punctuation`: delete punctuation before comparing (default false).
    - `dedup.survivor`: which member of a cluster is kept: first (default), longest, or source.
    - `dedup.source.field`: for survivor source, the JSON pointer of a field of each record as
      read, such as /source.
    - `dedup.source.prefer`: its values, most preferred first; other values come after them.
    - `dedup.source.then`: among members as preferred as each other, first (default) or longest.
    """

    code = "DUP001"
    name = "exact-duplicate"
    default_severity = Severity.WARNING
    default_action = Action.DROP

    def check(self, analysis: DuplicateAnalysis, ctx: RuleContext) -> FindingColumns:
        return analysis.dropped(ExactDuplicate, "exact duplicate of line {line}")


class NearDuplicate(DatasetRule):
    """## What it does
    Flags an example that differs from another only by small edits, after verifying the pair on
    the actual text of both.

    Finds candidate pairs with MinHash LSH over token shingles of the prompt and response text,
    then verifies every candidate on the actual tokens before reporting it: the prompt sides and
    the response sides must each reach `dedup.near.similarity` (the best of edit similarity,
    token-set overlap, and containment for texts of at least `dedup.near.containment_min_tokens`
    tokens), and neither side may have more than `dedup.near.max_changed_span` tokens replaced at
    one place. Typos, scattered word edits, added boilerplate, truncation and swapped sentences
    stay near-duplicates; the same template, document or dialogue with a different question,
    sentence or answer does not. Verified pairs are clustered; one member of each cluster
    survives and the finding gives the measured similarity.

    ## Why is this bad?
    Near-copies weigh on training like exact copies, and they are what plain exact dedup misses.
    Dropping a templated example because it shares the template would remove real data.

    ## Example
    Line 12 is line 5 with "teh" for "the" and a closing "Hope this helps!": near-duplicate of
    line 5, similarity 0.96.
    Use instead: keep one of the two.

    ## Options
    - `dedup.near.threshold`: the Jaccard similarity of shingle sets the LSH aims at (default 0.35).
    - `dedup.near.num_perm`: MinHash values per example (default 128).
    - `dedup.near.bands`, `dedup.near.rows`: LSH bands x rows (default: derived from the threshold).
    - `dedup.near.shingle.size`: tokens per shingle (default 3).
    - `dedup.near.shingle.spaceless_size`: characters per shingle for text in scripts without spaces (default 3).
    - `dedup.near.similarity`: the verified similarity both sides must reach (default 0.85).
    - `dedup.near.max_changed_span`: new tokens one edit may replace (default 3).
    - `dedup.near.containment_min_tokens`: shortest side for which containment counts (default 8).
    - `dedup.near.containment_min_ratio`: containment counts only when the shorter side is at least
      this share of the longer (default 0.5): a short answer inside a long one is not a copy.
    - `dedup.near.system`: compare system instructions too (default false).
    - `dedup.near.seed`: the MinHash seed (default 1).
    - `dedup.survivor`: which member of a cluster is kept (see DUP001 for it and `dedup.source`).
    """

    code = "DUP002"
    name = "near-duplicate"
    default_severity = Severity.WARNING
    default_action = Action.DROP

    def check(self, analysis: DuplicateAnalysis, ctx: RuleContext) -> FindingColumns:
        return analysis.dropped(NearDuplicate, "near-duplicate of line {line} (similarity {score:.2f})")


class ConflictingAnswers(DatasetRule):
    """## What it does
    Flags examples that share a prompt but give materially different answers.

    Groups examples by their prompt (system instruction and every turn before the last model
    turn, normalised as for exact duplicates) and flags groups whose last model turns differ
    and are not near-duplicates of each other: one finding per group, at the first example
    that contradicts the first one, listing every answer and how many examples give it.

    ## Why is this bad?
    The model is taught two answers to one question. In classification data this is a labelling
    error; in generation data it halves the signal of both answers.

    ## Example
    Line 8 asks "Sentiment: I loved it" with answer "positive" and line 30 asks the same with
    "negative".
    Use instead: decide on one label and fix or remove the other example.

    ## Options
    - `dedup.near.similarity`: answers at least this similar count as the same answer.
    """

    code = "DUP003"
    name = "conflicting-answers"
    default_severity = Severity.WARNING

    def check(self, analysis: DuplicateAnalysis, ctx: RuleContext) -> Iterator[Finding]:
        for group in analysis.conflicts:
            # One finding per group, at the first example whose answer differs from the first
            # example's; the message lists every answer with how many examples give it.
            first = min(min(records) for _, records in group)
            at = min(r for _, records in group for r in records if first not in records)
            shown = "; ".join(f"{_quote(answer)} ×{len(records)}" for answer, records in group[:4])
            more = f" and {len(group) - 4} more" if len(group) > 4 else ""
            total = sum(len(records) for _, records in group)
            yield self.finding(analysis.source, int(analysis.lines[at]),
                               f"{total} examples share the prompt of line {int(analysis.lines[first])} "
                               f"with {len(group)} different answers: {shown}{more}",
                               related=analysis.where(first))


class RepeatedPrompt(DatasetRule):
    """## What it does
    Notes a prompt that appears more often than the profile allows.

    Counts examples per prompt (everything before the last model turn, normalised as for exact
    duplicates) and reports each prompt that appears more often than the limit, once, at its
    first line.

    ## Why is this bad?
    One over-represented prompt pulls the tuned model towards its answers; the mix of the
    dataset is not what it seems.

    ## Example
    "Translate to French: hello" appears 57 times: reported at its first line.
    Use instead: keep a few examples of the prompt, or vary it.

    ## Options
    - `dedup.prompt_repeats`: how many times a prompt may appear (default 10).
    """

    code = "DUP004"
    name = "repeated-prompt"
    default_severity = Severity.INFO

    def check(self, analysis: DuplicateAnalysis, ctx: RuleContext) -> Iterator[Finding]:
        for count, records in analysis.repeated:
            shown = ", ".join(str(int(analysis.lines[r])) for r in records[1:6])
            more = ", …" if count > 6 else ""
            also = "line" if count == 2 else "lines"
            yield self.finding(analysis.source, int(analysis.lines[records[0]]),
                               f"this prompt appears {count} times (also {also} {shown}{more})")


def summary(analysis: DuplicateAnalysis, split: str, max_clusters: int) -> dict[str, Any]:
    """The report's `duplicates` entry for one file: counts, settings, LSH curve, clusters."""
    where = analysis.where
    return {
        "source": analysis.source,
        "split": split,
        "records": analysis.records,
        "records_without_text": analysis.without_text,
        "exact_dropped": analysis.exact_dropped,
        "near_dropped": analysis.near_dropped,
        "clusters": analysis.cluster_count,
        "candidate_pairs": analysis.candidates,
        "verified_pairs": analysis.verified,
        "skipped_pairs": analysis.skipped,
        "settings": analysis.settings,
        "listed_clusters": [
            {
                "size": len(c.members) + 1,
                "survivor": where(c.survivor),
                **({} if analysis.rank is None or analysis.preference is None else
                   {"survivor_source": analysis.preference.value(int(analysis.rank[c.survivor]))}),
                "members": [
                    {"record": where(r), "matched": where(m), "similarity": round(score, 4), "code": code}
                    for r, m, score, code in c.members[:20]
                ],
            }
            for c in analysis.largest(max_clusters)
        ],
        "conflicts": [
            [{"answer": answer, "records": [where(r) for r in records[:20]], "count": len(records)}
             for answer, records in group]
            for group in analysis.conflicts[:max_clusters]
        ],
        "conflict_groups": len(analysis.conflicts),
        "repeated_prompts": [
            {"count": count, "first": where(records[0])} for count, records in analysis.repeated[:max_clusters]
        ],
    }


def _quote(text: str) -> str:
    from sftgate.rules.base import quote

    return quote(text, 40)


def findings(analysis: DuplicateAnalysis, ctx: RuleContext, selected: Iterable[str]
             ) -> Iterator[Finding | FindingColumns]:
    """Every DUP finding of a file, for the selected codes: DUP001's and DUP002's as columns (a
    file of near duplicates has about one per record), the others one at a time."""
    chosen = set(selected)
    for rule in (ExactDuplicate, NearDuplicate):
        if rule.code in chosen:
            yield rule().check(analysis, ctx)
    yield from iter_family_findings((ConflictingAnswers, RepeatedPrompt), analysis, ctx, chosen)
