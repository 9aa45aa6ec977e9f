"""Planning a validation split of a training file: group-aware, stratified, capped, seeded.

The split works on groups, never on single records: a group is a connected component of
exact duplicates, verified near-duplicates (the DUP analysis) and prompts that share a source
(LEAK003's test within the training data). A group goes to one side whole, so nothing the
leakage rules would flag straddles the split.

Which groups go to validation: each group gets a seeded pseudo-random rank (a hash of its
smallest record and the seed: the same for any worker count or input chunking). Groups are
put into strata (by group size for `cluster`, by the label of short answers for `label`, one
stratum for `none`); each stratum's quota is its share of the target (largest remainders),
filled in rank order with groups that still fit. Whatever a stratum cannot fill (its groups
are too large) is filled from the other strata's remaining groups, in rank order. Groups the
leak check sent back (`blocked`) are never chosen again when the plan is redone.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sftgate.analysis.text import mix64
from sftgate.errors import UsageError

STRATIFY = ("cluster", "label", "none")


@dataclass(frozen=True)
class SplitRequest:
    size: float  # a share in (0, 1), or a number of examples (>= 1)
    stratify_by: str
    seed: int

    @classmethod
    def parse(cls, size: float, stratify_by: str, seed: int) -> SplitRequest:
        if not (0 < size < 1 or (1 <= size < 2**63 and float(size).is_integer())):
            raise UsageError(f"--split-validation {size}: give a share between 0 and 1 or a whole number of examples "
                             "(below 2^63)")
        if stratify_by not in STRATIFY:
            raise UsageError(f"--stratify-by {stratify_by!r}: choose one of {', '.join(STRATIFY)}")
        return cls(float(size), stratify_by, int(seed))


@dataclass
class SplitPlan:
    validation: np.ndarray  # bool per record: goes to validation
    groups: np.ndarray  # group label per record (its smallest record)
    requested: int  # examples the request asks for
    target: int  # after the caps
    capped_by: str | None  # "validation maximum" | "max_fraction" | None


def target_size(request: SplitRequest, records: int, max_validation: int | None,
                max_fraction: float) -> tuple[int, int, str | None]:
    """(requested, target, what capped it)."""
    requested = round(request.size * records) if request.size < 1 else int(request.size)
    target, capped_by = requested, None
    by_fraction = int(np.floor(max_fraction * records))
    if target > by_fraction:
        target, capped_by = by_fraction, "max_fraction"
    if max_validation is not None and target > max_validation:
        target, capped_by = max_validation, "validation maximum"
    return requested, max(0, target), capped_by


def plan(groups: np.ndarray, strata: np.ndarray, request: SplitRequest, target: int,
         blocked: np.ndarray | None = None) -> np.ndarray:
    """Which records go to validation (bool per record); see the module doc.

    `groups` labels each record with its group (any int64, equal within a group); `strata`
    gives each record a stratum key (the group's first record's key is the group's); records
    `blocked` (bool per record) stay in training with their whole group.
    """
    n = groups.size
    validation = np.zeros(n, dtype=bool)
    if not n or target <= 0:
        return validation
    ids, first, inverse, sizes = np.unique(groups, return_index=True, return_inverse=True, return_counts=True)
    inverse = inverse.ravel()
    group_stratum = strata[first]
    rank = mix64(ids.astype(np.uint64) ^ mix64(np.full(1, request.seed, dtype=np.uint64)))
    chosen = np.zeros(ids.size, dtype=bool)
    fits = sizes.copy()  # what a group weighs when filling: a blocked group never fits
    if blocked is not None and blocked.any():
        fits[np.unique(inverse[blocked])] = n + 1
    keys, stratum_of = np.unique(group_stratum, return_inverse=True)
    stratum_of = stratum_of.ravel()
    per_stratum = np.bincount(stratum_of, weights=sizes, minlength=keys.size)
    quotas = _largest_remainders(per_stratum / n * target, target)
    for s in range(keys.size):
        _fill(np.flatnonzero(stratum_of == s), rank, fits, chosen, int(quotas[s]))
    missing = target - int(sizes[chosen].sum())
    if missing > 0:  # strata whose groups were too large: fill from anywhere
        _fill(np.flatnonzero(~chosen), rank, fits, chosen, missing)
    validation[chosen[inverse]] = True
    return validation


def _fill(candidates: np.ndarray, rank: np.ndarray, sizes: np.ndarray, chosen: np.ndarray, quota: int) -> None:
    """Choose groups among `candidates` in rank order while they fit in `quota` records."""
    left = quota
    for g in candidates[np.argsort(rank[candidates], kind="stable")].tolist():
        if left <= 0:
            break
        if sizes[g] <= left:
            chosen[g] = True
            left -= int(sizes[g])


def _largest_remainders(shares: np.ndarray, total: int) -> np.ndarray:
    base = np.floor(shares).astype(np.int64)
    rest = total - int(base.sum())
    if rest > 0:
        order = np.argsort(-(shares - base), kind="stable")[:rest]
        base[order] += 1
    return base


def cluster_strata(groups: np.ndarray) -> np.ndarray:
    """Stratum per record by the size of its group: 1, 2, 3-4, 5-8, ... (log2 classes)."""
    _, inverse, sizes = np.unique(groups, return_inverse=True, return_counts=True)
    return np.ceil(np.log2(sizes[inverse.ravel()])).astype(np.int64)


def label_strata(response_key: np.ndarray, response_tokens: np.ndarray, max_tokens: int) -> np.ndarray:
    """Stratum per record by its label: the last answer's key when it is at most `max_tokens`
    tokens long (a class label), one shared stratum for every longer answer."""
    return np.where((response_tokens > 0) & (response_tokens <= max_tokens), response_key.view(np.int64), 0)
