"""Exact similarity of two token sequences, for verifying candidate pairs.

Three measures, each exact (no sketch):

- `similarity`: 1 - Indel distance / total tokens, i.e. 2 x longest common subsequence /
  (len a + len b). Typos and scattered word edits cost little; text added or removed costs
  its length.
- `containment`: longest common subsequence / the shorter sequence: 1.0 when one text is the
  other with text added (boilerplate) or cut off (truncation).
- `overlap`: Jaccard similarity of the two token sets: 1.0 when sentences or lines swapped
  places.

and one measure of *what kind* of difference it is: `changed_span`, the largest number of
tokens replaced at one place by different tokens (an aligned deletion and insertion side by
side). Scattered typos and edits replace one or two tokens at a time; the same template
filled with a different sentence, question or document replaces a whole span. That is what
separates a near-duplicate from a different example built on the same template.
"""

from __future__ import annotations

from collections import Counter
from typing import NamedTuple

from rapidfuzz.distance import Indel

_LONG = 50_000  # beyond this many tokens a side is compared by token sets only


class Match(NamedTuple):
    similarity: float
    containment: float
    shorter: int  # tokens in the shorter sequence
    replaced_at_most: int  # min(deleted, inserted): no place can replace more tokens than this


def compare(a: list[int], b: list[int]) -> Match:
    la, lb = len(a), len(b)
    if a == b:
        return Match(1.0, 1.0, la, 0)
    shorter = min(la, lb)
    if shorter == 0:
        return Match(0.0, 0.0, 0, 0)
    if la > _LONG and lb > _LONG:
        o = overlap(a, b)
        return Match(o, o, shorter, 0)
    distance = Indel.distance(a, b)
    lcs = (la + lb - distance) // 2
    return Match(1.0 - distance / (la + lb), lcs / shorter, shorter, shorter - lcs)


def overlap(a: list[int], b: list[int]) -> float:
    """Jaccard similarity of the two token sets (1.0 for two empty sequences)."""
    sa, sb = set(a), set(b)
    union = len(sa | sb)
    return len(sa & sb) / union if union else 1.0


def changed_span(a: list[int], b: list[int], gap: int = 1) -> int:
    """The most *new* tokens replaced at one place.

    The alignment's edits are grouped into places: runs of deletions and insertions separated
    by at most `gap` equal tokens (a common word matched by chance inside a replaced sentence
    does not split it). At each place, a replaced token is new when it occurs nowhere among the
    other side's edits: a sentence moved elsewhere is deleted here and inserted there, and is
    not new. The place's score is min(new deleted, new inserted): pure insertions (boilerplate)
    and pure deletions (truncation) score 0, a typo 1, a different sentence its length.
    """
    if a == b:
        return 0
    if len(a) > _LONG and len(b) > _LONG:
        return 0
    places: list[tuple[list[int], list[int]]] = []
    deleted: list[int] = []
    inserted: list[int] = []
    all_deleted: Counter[int] = Counter()
    all_inserted: Counter[int] = Counter()
    for tag, i1, i2, j1, j2 in Indel.opcodes(a, b):
        if tag == "equal":
            if i2 - i1 > gap and (deleted or inserted):
                places.append((deleted, inserted))
                deleted, inserted = [], []
        elif tag == "delete":
            deleted.extend(a[i1:i2])
            all_deleted.update(a[i1:i2])
        else:
            inserted.extend(b[j1:j2])
            all_inserted.update(b[j1:j2])
    if deleted or inserted:
        places.append((deleted, inserted))
    worst = 0
    for gone, added in places:
        if gone and added:
            new_gone = sum(1 for t in gone if t not in all_inserted)
            new_added = sum(1 for t in added if t not in all_deleted)
            worst = max(worst, min(new_gone, new_added))
    return worst
