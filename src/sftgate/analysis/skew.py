"""Training-serving skew and composition: how a training set differs from production prompts.

Pure statistics over arrays and lists; no rules, files or processes. The engine supplies, per
side, per-example feature columns of *every* record (`textfeatures.feature_columns`, plus the
token, turn, media and system-instruction columns it keeps itself) and a bounded, seeded sample
of prompt texts (`sample_priority`: a hash of the record's position, the same for any worker
count). `analyse` returns one `SkewAnalysis`; each part can also be called on its own.

Why these statistics (../shared/reference/quality-gate-anchors.md, TFDV, Evidently, Deequ):
a distance compared with a fixed threshold raises false alarms on small samples (TFDV #216) and
a p-value raises them on large ones (Evidently #50). Here a feature is flagged only when its
distance is both beyond what two samples of one distribution show *at these sizes* (a
permutation or multinomial null, like Deequ's robust distance that subtracts the KS critical
value) and at least a minimum effect size (0.2 training standard deviations for numeric
features, twice Evidently's 0.1; a 10-point change of a share for categories). The text is judged by a domain classifier (Evidently's text drift, with a
cross-validated AUC and its interval instead of one split), explained by the terms and
examples that separate the two sides.

Numeric features: counts (lengths, tokens, turns) are compared on a log scale, shares as they
are. The distance is the Wasserstein-1 distance divided by the training standard deviation (on
that scale, floored so that a constant training column does not divide by zero). The null: the
two sides' values pooled (at most `null_sample` of each) and split at random `permutations`
times; the critical value is the null mean plus `null_sd` standard deviations (a one-sided
bound beyond the 99.9th percentile of such near-Gaussian nulls, so that a dozen features
compared at once rarely trip by chance), rescaled to the full sizes by
sqrt(1/n + 1/m) (the rate at which the distance between two empirical distributions shrinks).

Categorical features: Jensen-Shannon distance (base 2, in [0, 1]) of the category shares and
L-infinity (the largest change of one share). The null draws both sides from the pooled shares
at their exact sizes (multinomial); flagged when JS is beyond the null's mean + `null_sd`
standard deviations and L-infinity >= `min_share_change`.
"""

from __future__ import annotations

import math
import warnings
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import scipy.sparse as sp

from sftgate.analysis.text import fold, mix64, token_hashes, token_spans
from sftgate.analysis.textfeatures import SCRIPTS

Z95 = 1.959963984540054
Z99 = 2.3263478740408408  # one-sided 99 % normal quantile


# --- settings and inputs -------------------------------------------------------------------------


@dataclass(frozen=True)
class SkewSettings:
    """Every threshold of the analysis; the defaults are justified in benchmarks/README.md."""

    min_effect: float = 0.2  # numeric: normalised Wasserstein at least this
    min_share_change: float = 0.1  # categorical: some category's share moved by at least this
    null_sd: float = 4.0  # critical value = null mean + null_sd * null sd
    permutations: int = 200
    null_sample: int = 2000  # values per side in the permutation null
    observed_cap: int = 200_000  # values per side for the observed distance (seeded sample)
    multinomial_draws: int = 2000
    max_categories: int = 20  # categorical: the rest is pooled as "other"
    train_texts: int = 10_000  # training texts vectorised (classifier, coverage, composition)
    prod_texts: int = 5_000  # production texts vectorised
    classifier_train: int = 5_000  # training texts in the classifier (production: prod_texts)
    head_tokens: int = 48  # each text is represented by its first head_tokens and last tail_tokens
    tail_tokens: int = 16  # tokens: what it is about, and not how long it is
    folds: int = 5
    auc_warn: float = 0.75
    auc_error: float = 0.9
    terms: int = 15
    outliers: int = 5
    coverage_quantile: float = 0.05  # uncovered: below this quantile of training's own similarity
    coverage_threshold: float | None = None  # a fixed cosine instead of the quantile
    cluster_min_share: float = 0.02  # an uncovered cluster holds at least this share of production
    cluster_p: float = 1e-3  # and is this unlikely to be chance
    cluster_examples: int = 3
    composition_k: tuple[int, int] = (4, 32)  # bounds of k
    embedding_dims: int = 64


@dataclass(frozen=True)
class Side:
    """One side of the comparison, as the engine collects it.

    `numeric` and `categorical` hold a column per feature over every record (equal lengths);
    `texts` is the seeded sample of prompt texts (system instruction + user turns), `answers`
    the last model answers of the same sample (None when the side has none, e.g. production).
    """

    numeric: Mapping[str, np.ndarray] = field(default_factory=dict)
    categorical: Mapping[str, np.ndarray] = field(default_factory=dict)
    texts: Sequence[str] = ()
    answers: Sequence[str] | None = None

    @property
    def records(self) -> int:
        for column in (*self.numeric.values(), *self.categorical.values()):
            return len(column)
        return len(self.texts)


@dataclass(frozen=True)
class FeatureSpec:
    """How a feature is compared and described."""

    kind: str  # "count" (log scale), "share" (a fraction), "value" (as is)
    noun: str  # what it counts or measures
    subject: str = "prompts"
    longer: bool = False  # "are 3.0x longer" rather than "have 3.0x more <noun>"


FEATURES: dict[str, FeatureSpec] = {
    "chars": FeatureSpec("count", "characters", longer=True),
    "words": FeatureSpec("count", "words", longer=True),
    "lines": FeatureSpec("count", "lines"),
    "prompt_tokens": FeatureSpec("count", "tokens", longer=True),
    "response_tokens": FeatureSpec("count", "tokens", subject="answers", longer=True),
    "turns": FeatureSpec("count", "turns", subject="conversations"),
    "user_turns": FeatureSpec("count", "user turns", subject="conversations"),
    "media_parts": FeatureSpec("count", "media parts"),
    "media_kind": FeatureSpec("share", "media"),
    "language": FeatureSpec("share", "language"),
    "code_share": FeatureSpec("share", "code"),
    "markdown_share": FeatureSpec("share", "Markdown lines"),
    "digit_share": FeatureSpec("share", "digits"),
    "upper_share": FeatureSpec("share", "capital letters"),
    "punct_share": FeatureSpec("share", "punctuation"),
    "has_json": FeatureSpec("share", "JSON"),
    "has_url": FeatureSpec("share", "URLs"),
    "question": FeatureSpec("share", "questions"),
    "script": FeatureSpec("share", "script"),
    "system": FeatureSpec("share", "system instruction"),
}
_SPREAD_FLOOR = {"count": 0.1, "share": 0.05, "value": 1e-9}  # log units; share points


def sample_priority(positions: np.ndarray, seed: int) -> np.ndarray:
    """A seeded 64-bit priority per record position; the records with the k smallest form a
    uniform sample of k, the same whichever worker saw which record (bottom-k sampling: each
    worker keeps its k smallest, the parent keeps the k smallest of those)."""
    p = np.asarray(positions, dtype=np.uint64)
    return mix64(p * np.uint64(0x9E3779B97F4A7C15) + np.uint64(seed & 0xFFFFFFFFFFFFFFFF))


def bottom_k(priorities: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k smallest priorities, in increasing priority (stable on ties)."""
    order = np.argsort(priorities, kind="stable")
    return order[:k]


# --- numeric and categorical shift ----------------------------------------------------------------


@dataclass(frozen=True)
class NumericShift:
    feature: str
    distance: float  # Wasserstein-1 / training spread, on the feature's scale
    expected: float  # the mean distance between two samples of one distribution at these sizes
    critical: float  # expected + null_sd standard deviations
    flagged: bool
    train_median: float
    prod_median: float
    train_mean: float
    prod_mean: float
    ratio: float  # production / training (median, or mean when a median is 0)
    n_train: int
    n_prod: int
    message: str
    # Shares of each side per bin, on the feature's scale (log1p for counts): `edges` has one
    # more value than `train` and `prod`, in the feature's own units (for a histogram).
    histogram: dict[str, tuple[float, ...]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out = _rounded({k: v for k, v in self.__dict__.items() if k != "histogram"})
        out["histogram"] = {k: [round(x, 6) for x in v] for k, v in self.histogram.items()}
        return out


_BINS = 20


def _histogram(tx: np.ndarray, ty: np.ndarray, spec: FeatureSpec) -> dict[str, tuple[float, ...]]:
    """Both sides' shares over `_BINS` equal bins of the pooled range (1st-99th percentile, so
    one outlier does not squash the rest; values outside fall in the end bins)."""
    pooled = np.concatenate([tx, ty])
    low, high = (float(v) for v in np.percentile(pooled, [1, 99]))
    if not high > low:
        low, high = float(pooled.min()), float(pooled.max())
    if not high > low:
        high = low + 1.0
    edges = np.linspace(low, high, _BINS + 1)

    def shares(v: np.ndarray) -> tuple[float, ...]:
        bins = np.clip(np.searchsorted(edges, v, side="right") - 1, 0, _BINS - 1)
        return tuple((np.bincount(bins, minlength=_BINS) / max(v.size, 1)).tolist())

    units = np.expm1(edges) if spec.kind == "count" else edges
    return {"edges": tuple(units.tolist()), "train": shares(tx), "prod": shares(ty)}


def numeric_shift(feature: str, train: np.ndarray, prod: np.ndarray, *, spec: FeatureSpec | None = None,
                  settings: SkewSettings = SkewSettings(), seed: int = 0) -> NumericShift:
    """Compare one numeric feature; see the module docstring for the test."""
    spec = spec or FEATURES.get(feature) or FeatureSpec("value", feature)
    rng = np.random.default_rng([seed, _name_seed(feature)])
    x = np.asarray(train, dtype=np.float64)
    y = np.asarray(prod, dtype=np.float64)
    n, m = x.size, y.size
    tx, ty = _transform(_cap(x, settings.observed_cap, rng), spec), _transform(_cap(y, settings.observed_cap, rng), spec)
    spread = max(float(tx.std()), _SPREAD_FLOOR[spec.kind])
    distance = _wasserstein(tx, ty) / spread
    a, b = min(tx.size, settings.null_sample), min(ty.size, settings.null_sample)
    pooled = np.concatenate([rng.choice(tx, a, replace=False), rng.choice(ty, b, replace=False)])
    perms = np.argsort(rng.random((settings.permutations, a + b)), axis=1)
    shuffled = pooled[perms]
    null = _wasserstein_rows(shuffled[:, :a], shuffled[:, a:]) / spread
    scale = math.sqrt((1 / tx.size + 1 / ty.size) / (1 / a + 1 / b))
    expected = float(null.mean()) * scale
    critical = (float(null.mean()) + settings.null_sd * float(null.std())) * scale
    flagged = distance > critical and distance >= settings.min_effect
    tm, pm = float(np.median(x)), float(np.median(y))
    tmean, pmean = float(x.mean()), float(y.mean())
    ratio = pm / tm if tm > 0 and pm > 0 else (pmean / tmean if tmean > 0 else math.inf if pmean > 0 else 1.0)
    message = _numeric_message(spec, tm, pm, tmean, pmean, ratio)
    return NumericShift(feature, distance, expected, critical, flagged, tm, pm, tmean, pmean, ratio, n, m, message,
                        _histogram(tx, ty, spec))


def _cap(v: np.ndarray, cap: int, rng: np.random.Generator) -> np.ndarray:
    return v if v.size <= cap else rng.choice(v, cap, replace=False)


def _transform(v: np.ndarray, spec: FeatureSpec) -> np.ndarray:
    return np.log1p(np.maximum(v, 0)) if spec.kind == "count" else v


_GRID = 1000  # quantile levels of the Wasserstein integral


def _wasserstein(x: np.ndarray, y: np.ndarray) -> float:
    """W1 = integral over u of |Qx(u) - Qy(u)|, on a grid of quantile levels (midpoints)."""
    return float(_wasserstein_rows(np.sort(x)[None, :], np.sort(y)[None, :], presorted=True)[0])


def _wasserstein_rows(x: np.ndarray, y: np.ndarray, *, presorted: bool = False) -> np.ndarray:
    if not presorted:
        x, y = np.sort(x, axis=1), np.sort(y, axis=1)
    u = (np.arange(_GRID) + 0.5) / _GRID
    qx = x[:, np.minimum((u * x.shape[1]).astype(np.int64), x.shape[1] - 1)]
    qy = y[:, np.minimum((u * y.shape[1]).astype(np.int64), y.shape[1] - 1)]
    return np.abs(qx - qy).mean(axis=1)


def _numeric_message(spec: FeatureSpec, tm: float, pm: float, tmean: float, pmean: float, ratio: float) -> str:
    subject = f"production {spec.subject}"
    if spec.kind == "share":
        direction = "more" if pmean >= tmean else "less"
        return f"{subject} have {direction} {spec.noun} (mean {pmean:.1%} vs {tmean:.1%} in training)"
    use_median = tm > 0 and pm > 0
    p, t, stat = (pm, tm, "median") if use_median else (pmean, tmean, "mean")
    if not math.isfinite(ratio):
        return f"{subject} have {spec.noun} where training has none ({stat} {p:,.0f} vs {t:,.0f})"
    factor = ratio if ratio >= 1 else (1 / ratio if ratio > 0 else math.inf)
    if spec.longer:
        word = "longer" if ratio >= 1 else "shorter"
        return f"{subject} are {factor:.1f}x {word} ({stat} {p:,.0f} vs {t:,.0f} {spec.noun})"
    word = "more" if ratio >= 1 else "fewer"
    return f"{subject} have {factor:.1f}x {word} {spec.noun} ({stat} {p:,.1f} vs {t:,.1f})"


@dataclass(frozen=True)
class CategoryChange:
    category: str
    train_share: float
    prod_share: float


@dataclass(frozen=True)
class CategoricalShift:
    feature: str
    distance: float  # Jensen-Shannon distance, base 2
    linf: float  # largest change of one category's share
    expected: float
    critical: float
    flagged: bool
    changes: tuple[CategoryChange, ...]  # the categories that moved most, largest change first
    n_train: int
    n_prod: int
    message: str

    def to_dict(self) -> dict[str, Any]:
        d = _rounded({k: v for k, v in self.__dict__.items() if k != "changes"})
        d["changes"] = [_rounded(c.__dict__) for c in self.changes]
        return d


def categorical_shift(feature: str, train: np.ndarray, prod: np.ndarray, *,
                      labels: Mapping[Any, str] | None = None, settings: SkewSettings = SkewSettings(),
                      seed: int = 0) -> CategoricalShift:
    """Compare one categorical feature (codes of any hashable dtype); `labels` names codes."""
    t_vals, t_counts = np.unique(np.asarray(train), return_counts=True)
    p_vals, p_counts = np.unique(np.asarray(prod), return_counts=True)
    n, m = int(t_counts.sum()), int(p_counts.sum())
    cats = np.union1d(t_vals, p_vals)
    tc = np.zeros(cats.size)
    pc = np.zeros(cats.size)
    tc[np.searchsorted(cats, t_vals)] = t_counts
    pc[np.searchsorted(cats, p_vals)] = p_counts
    names = [_category_name(feature, c, labels) for c in cats.tolist()]
    if cats.size > settings.max_categories:  # keep the largest, pool the rest as "other"
        keep = np.argsort(-(tc / max(n, 1) + pc / max(m, 1)), kind="stable")[:settings.max_categories - 1]
        rest = np.setdiff1d(np.arange(cats.size), keep)
        tc = np.append(tc[keep], tc[rest].sum())
        pc = np.append(pc[keep], pc[rest].sum())
        names = [names[i] for i in keep.tolist()] + ["other"]
    ts, ps = tc / max(n, 1), pc / max(m, 1)
    distance = float(_js(ts[None, :], ps[None, :])[0])
    linf = float(np.abs(ts - ps).max()) if ts.size else 0.0
    rng = np.random.default_rng([seed, _name_seed(feature)])
    pooled = (tc + pc) / max(n + m, 1)
    draws = settings.multinomial_draws
    null = _js(rng.multinomial(n, pooled, size=draws) / max(n, 1), rng.multinomial(m, pooled, size=draws) / max(m, 1))
    expected = float(null.mean())
    critical = expected + settings.null_sd * float(null.std())
    flagged = distance > critical and linf >= settings.min_share_change
    order = np.argsort(-np.abs(ts - ps), kind="stable")[:5]
    changes = tuple(CategoryChange(names[i], float(ts[i]), float(ps[i])) for i in order.tolist())
    spec = FEATURES.get(feature) or FeatureSpec("share", feature)
    if set(names) <= {"no", "yes"}:
        message = (f"{spec.noun}: {ps[names.index('yes')] if 'yes' in names else 0.0:.1%} of production prompts vs "
                   f"{ts[names.index('yes')] if 'yes' in names else 0.0:.1%} of training prompts")
    else:
        moved = ", ".join(f"{c.category} {c.train_share:.1%} -> {c.prod_share:.1%}" for c in changes[:3])
        message = f"{spec.noun} (training -> production): {moved}"
    return CategoricalShift(feature, distance, linf, expected, critical, flagged, changes, n, m, message)


def _category_name(feature: str, code: Any, labels: Mapping[Any, str] | None) -> str:
    if labels is not None and code in labels:
        return labels[code]
    if feature == "script" and isinstance(code, int) and 0 <= code < len(SCRIPTS):
        return SCRIPTS[code]
    if feature in ("has_json", "has_url", "question") and code in (0, 1):
        return "yes" if code else "no"
    if feature == "system":
        return "none" if code == 0 else f"variant {int(code) & 0xFFFFFFFF:08x}"
    return str(code)


def _js(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Jensen-Shannon distance (sqrt of the divergence, base 2) between rows of p and q."""
    mid = (p + q) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        kp = np.where(p > 0, p * np.log2(p / mid), 0.0).sum(axis=1)
        kq = np.where(q > 0, q * np.log2(q / mid), 0.0).sum(axis=1)
    return np.sqrt(np.maximum((kp + kq) / 2, 0.0))


# --- text: one vector space for the classifier, coverage and clusters ------------------------------


class TextSpace:
    """TF-IDF vectors of a list of texts over hashed word unigrams and bigrams.

    Tokens are those of `analysis/text.py` (NFKC + case folding; `\\w` runs, one character per
    token in spaceless scripts), hashed in numpy; a column is the top 20 bits of a token's (or
    bigram's) 64-bit hash, so equal terms share a column across calls. Only columns present
    are kept. Weights: 1 + log tf, times smooth idf, rows L2-normalised, so a dot product is the
    cosine. Each text is represented by its first `head` and last `tail` tokens, so that the
    vectors say what a text is about and not how long it is (length is a numeric feature).
    """

    _BITS = 20

    def __init__(self, texts: Sequence[str], *, head: int = 48, tail: int = 16, dims: int = 64, seed: int = 0):
        import scipy.sparse as sp  # imported when used: scipy costs a second of start-up
        self.texts = list(texts)
        self.head, self.tail, self.dims, self.seed = head, tail, dims, seed
        self._nn: sp.csr_matrix | None = None
        self._embedding: np.ndarray | None = None
        hashes, counts, _ = token_hashes([self._proxy(t) for t in self.texts])
        n = len(self.texts)
        owner = np.repeat(np.arange(n, dtype=np.int64), counts)
        ends = np.cumsum(counts)
        pos = np.arange(hashes.size) - np.repeat(ends - counts, counts)
        keep = (pos < head) | (pos >= np.repeat(counts, counts) - tail)
        same = (owner[1:] == owner[:-1]) & keep[1:] & keep[:-1]
        bigrams = _bigram(hashes[:-1][same], hashes[1:][same])
        self.groups = _duplicate_groups(n, owner, pos, hashes, keep & (pos < head), keep & (pos >= head))
        hashes, owner_kept = hashes[keep], owner[keep]
        shift = np.uint64(64 - self._BITS)
        cols = np.concatenate([hashes >> shift, bigrams >> shift]).astype(np.int64)
        rows = np.concatenate([owner_kept, owner[:-1][same]])
        key = np.sort((rows << self._BITS) | cols)
        first = np.ones(key.size, dtype=bool)
        np.not_equal(key[1:], key[:-1], out=first[1:])
        starts = np.flatnonzero(first)
        tf = np.diff(np.append(starts, key.size)).astype(np.float32)
        key = key[starts]
        r, c = key >> self._BITS, key & ((1 << self._BITS) - 1)
        present = np.bincount(c, minlength=1 << self._BITS) > 0
        self.columns = np.flatnonzero(present)  # hashed id of each column
        col = (np.cumsum(present) - 1)[c]
        df = np.bincount(col, minlength=self.columns.size)
        idf = (np.log((1 + n) / (1 + df)) + 1).astype(np.float32)
        data = (1 + np.log(tf)) * idf[col]
        norms = np.sqrt(np.bincount(r, weights=data.astype(np.float64) ** 2, minlength=n))
        data /= np.maximum(norms[r], 1e-12).astype(np.float32)
        indptr = np.searchsorted(r, np.arange(n + 1))
        self.matrix = sp.csr_matrix((data, col, indptr), shape=(n, self.columns.size))
        self.df = df

    @property
    def embedding(self) -> np.ndarray:
        """Unit rows of latent semantic analysis (truncated SVD of the TF-IDF rows over terms in
        at least 3 texts and 0.1 %): texts on one subject share directions even when they share
        few words, which k-means needs; computed once, seeded."""
        if self._embedding is None:
            n = self.matrix.shape[0]
            cols = np.flatnonzero(self.df >= max(3, 0.001 * n))
            dims = min(self.dims, cols.size - 1, n - 1)
            if dims < 2:
                z = np.ones((n, 1), dtype=np.float32)
            else:
                from sklearn.decomposition import TruncatedSVD  # a second's import: only when needed

                with warnings.catch_warnings():  # all-alike texts: sklearn's explained-variance ratio is 0/0
                    warnings.simplefilter("ignore", RuntimeWarning)
                    z = TruncatedSVD(dims, n_iter=3, random_state=self.seed).fit_transform(self.matrix[:, cols])
            z /= np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-12)
            self._embedding = z.astype(np.float32)
        return self._embedding

    def terms(self, cols: Sequence[int], rows: Sequence[int]) -> dict[int, str]:
        """The text of columns `cols` (indices into `columns`), read back from texts `rows`."""
        wanted = {int(self.columns[c]): int(c) for c in cols}
        found: dict[int, str] = {}
        shift = np.uint64(64 - self._BITS)
        for i in rows:
            text = self._proxy(self.texts[i])
            starts, ends = token_spans(text)
            tokens = [text[s:e] for s, e in zip(starts.tolist(), ends.tolist(), strict=True)]
            if not tokens:
                continue
            h, _, _ = token_hashes(tokens)
            ids = (h >> shift).astype(np.int64).tolist()
            bi = (_bigram(h[:-1], h[1:]) >> shift).astype(np.int64).tolist()
            for j, key in enumerate(ids):
                if key in wanted and wanted[key] not in found:
                    found[wanted[key]] = tokens[j]
            for j, key in enumerate(bi):
                if key in wanted and wanted[key] not in found:
                    found[wanted[key]] = f"{tokens[j]} {tokens[j + 1]}"
            if len(found) == len(wanted):
                break
        return found

    def _distinctive(self) -> sp.csr_matrix:
        import scipy.sparse as sp
        if self._nn is None:
            m = self.matrix[:, np.flatnonzero(self.df <= max(2, 0.05 * self.matrix.shape[0]))].tocsr()
            norms = np.sqrt(np.asarray(m.multiply(m).sum(axis=1)).ravel())
            self._nn = sp.diags(1 / np.maximum(norms, 1e-12)).astype(np.float32) @ m
        return self._nn

    def _proxy(self, text: str) -> str:
        """The folded text, its middle cut when the head and tail tokens cannot reach it."""
        budget = 12 * (self.head + self.tail)
        if len(text) > budget:
            text = text[:12 * self.head] + " " + text[-12 * self.tail:]
        return fold(text)

    def nearest(self, queries: np.ndarray, reference: np.ndarray, block: int = 1024) -> tuple[np.ndarray, np.ndarray]:
        """For each query row: the most similar reference row (index into `reference`) and the cosine.

        The cosine is on the *distinctive* terms: columns held by more than 5 % of all texts
        (function words, the shared instruction) are left out and rows re-normalised. They
        say little about what a text is about, and they make up most of the work of the
        sparse product.
        """
        m = self._distinctive()
        ref = m[reference].T.tocsr()
        best = np.zeros(queries.size, dtype=np.int64)
        sim = np.zeros(queries.size, dtype=np.float64)
        for s in range(0, queries.size, block):
            prod = (m[queries[s:s + block]] @ ref).toarray()
            if prod.shape[1] == 0:
                continue
            best[s:s + block] = prod.argmax(axis=1)
            sim[s:s + block] = prod[np.arange(prod.shape[0]), best[s:s + block]]
        return best, sim


def _duplicate_groups(n: int, owner: np.ndarray, pos: np.ndarray, hashes: np.ndarray, head: np.ndarray,
                      tail: np.ndarray) -> np.ndarray:
    """Per text, the smallest index of the texts it shares its head or its tail tokens with
    (transitively): repeated prompts must not be split across validation folds, or the
    classifier scores their memory instead of a domain."""
    from sftgate.analysis.unionfind import components

    edges = []
    for part in (head, tail):
        keys = np.zeros(n, dtype=np.uint64)
        h = mix64(hashes[part] ^ mix64(pos[part].astype(np.uint64)))
        np.add.at(keys, owner[part], h)
        has = np.bincount(owner[part], minlength=n) > 0
        rows = np.flatnonzero(has)
        _, first, inverse = np.unique(keys[rows], return_index=True, return_inverse=True)
        edges.append(np.stack([rows, rows[first][inverse]], axis=1))
    return components(n, np.concatenate(edges)) if edges else np.arange(n)


def _bigram(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return mix64(a * np.uint64(0x9E3779B97F4A7C15) + b)


# --- domain classifier ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Term:
    term: str
    train_share: float  # share of training texts (of the sample) holding it
    prod_share: float
    z: float  # log-odds ratio z-score, > 0 production side


@dataclass(frozen=True)
class Example:
    prod_text: str
    similarity: float  # cosine of TF-IDF vectors with its nearest training text
    train_text: str
    prod_index: int  # index into the production texts given
    train_index: int


@dataclass(frozen=True)
class DomainShift:
    auc: float  # cross-validated ROC AUC, out-of-fold scores pooled; 0.5 = indistinguishable
    low: float  # 95 % interval (DeLong)
    high: float
    chance: float  # AUC that two samples of one distribution exceed 1 % of the time at these sizes
    fold_aucs: tuple[float, ...]
    n_train: int
    n_prod: int
    train_terms: tuple[Term, ...]  # most typical of training, strongest first
    prod_terms: tuple[Term, ...]  # most typical of production
    least_covered: tuple[Example, ...]  # production texts least like any training text
    level: str | None  # None, "warning" (auc >= auc_warn), "error" (auc >= auc_error)
    message: str

    @property
    def flagged(self) -> bool:
        return self.level is not None

    def to_dict(self) -> dict[str, Any]:
        d = _rounded({k: v for k, v in self.__dict__.items()
                      if k not in ("train_terms", "prod_terms", "least_covered", "fold_aucs")})
        d["fold_aucs"] = [round(a, 4) for a in self.fold_aucs]
        d["train_terms"] = [_rounded(t.__dict__) for t in self.train_terms]
        d["prod_terms"] = [_rounded(t.__dict__) for t in self.prod_terms]
        d["least_covered"] = [_rounded(e.__dict__) for e in self.least_covered]
        return d


def domain_shift(space: TextSpace, train_rows: np.ndarray, prod_rows: np.ndarray, *,
                 reference_rows: np.ndarray | None = None, settings: SkewSettings = SkewSettings(),
                 seed: int = 0, nearest: tuple[np.ndarray, np.ndarray] | None = None) -> DomainShift:
    """Can a linear classifier tell production texts from training texts?

    Logistic regression (log loss, L2, fitted by seeded SGD: ~20x faster than lbfgs on 10^5
    sparse columns at the same AUC) on the TF-IDF rows, `folds`-fold cross validation with
    folds drawn per duplicate group (`TextSpace.groups`), out-of-fold scores pooled into one
    AUC with DeLong's interval. Terms: the log-odds ratio of a text holding the term,
    production vs training, among terms whose z-score passes 3.29 (p < 0.001) and that are in
    at least 1 % of their side's texts, largest ratio first (a term in all training texts and
    0.3 % of production ones comes before a common word); bigrams only when not both of their
    words are listed already. `least_covered`: production texts whose
    nearest text among `reference_rows` (default: the training rows) has the lowest cosine.
    """
    from sklearn.linear_model import SGDClassifier

    rows = np.concatenate([train_rows, prod_rows])
    y = np.concatenate([np.zeros(train_rows.size, dtype=np.int8), np.ones(prod_rows.size, dtype=np.int8)])
    x = space.matrix[rows]
    folds = min(settings.folds, int(train_rows.size), int(prod_rows.size))
    if x.shape[1] == 0:  # no text holds a term (media only, punctuation): nothing to tell them apart by
        folds = 0
    scores = np.zeros(rows.size)
    fold_aucs: list[float] = []
    if folds >= 2:
        # Folds by a seeded hash of the duplicate group: copies of a prompt stay together.
        fold_of = (mix64(space.groups[rows].astype(np.uint64) + np.uint64(seed)) % np.uint64(folds)).astype(np.int64)
        for k in range(folds):
            fit, held = np.flatnonzero(fold_of != k), np.flatnonzero(fold_of == k)
            if np.unique(y[fit]).size < 2 or not held.size:
                continue
            model = SGDClassifier(loss="log_loss", alpha=1e-5, max_iter=20, tol=None, class_weight="balanced",
                                  random_state=seed + k)
            model.fit(x[fit], y[fit])
            scores[held] = model.decision_function(x[held])
            fold_aucs.append(_delong(scores[held], y[held])[0])
        auc, var = _delong(scores, y)
    else:
        auc, var = 0.5, 0.0
    half = Z95 * math.sqrt(var)
    m, n = prod_rows.size, train_rows.size
    chance = 0.5 + Z99 * math.sqrt((m + n + 1) / (12 * max(m, 1) * max(n, 1)))
    low = max(0.0, auc - half)
    level = None
    if auc >= settings.auc_warn and low > chance:
        level = "error" if auc >= settings.auc_error else "warning"
    train_terms, prod_terms = _terms(space, train_rows, prod_rows, settings.terms)
    ref = train_rows if reference_rows is None else reference_rows
    least = _least_covered(space, prod_rows, ref, settings.outliers, nearest)
    words = ("indistinguishable" if auc <= chance else "barely distinguishable" if auc < 0.6
             else "partly distinguishable" if auc < settings.auc_warn else "clearly distinguishable")
    message = (f"a classifier tells production from training texts with ROC AUC {auc:.2f} "
               f"(95 % CI {low:.2f}-{min(1.0, auc + half):.2f}; chance up to {chance:.2f}): {words}")
    if level and train_terms and prod_terms:
        message += (f"; typical of training: {', '.join(t.term for t in train_terms[:5])}; "
                    f"of production: {', '.join(t.term for t in prod_terms[:5])}")
    return DomainShift(auc, low, min(1.0, auc + half), chance, tuple(fold_aucs), n, m, train_terms, prod_terms,
                       least, level, message)


def _delong(scores: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """ROC AUC of scores for y == 1 against y == 0 and DeLong's variance of it."""
    from scipy.stats import rankdata
    pos, neg = scores[y == 1], scores[y == 0]
    m, n = pos.size, neg.size
    if m == 0 or n == 0:
        return 0.5, 0.0
    ranks = rankdata(np.concatenate([pos, neg]))
    v10 = (ranks[:m] - rankdata(pos)) / n
    v01 = 1 - (ranks[m:] - rankdata(neg)) / m
    auc = float(v10.mean())
    var = (v10.var(ddof=1) / m if m > 1 else 0.0) + (v01.var(ddof=1) / n if n > 1 else 0.0)
    return auc, float(var)


def _terms(space: TextSpace, train_rows: np.ndarray, prod_rows: np.ndarray, k: int) -> tuple[tuple[Term, ...], ...]:
    present = space.matrix.copy()
    present.data[:] = 1
    dt = np.asarray(present[train_rows].sum(axis=0)).ravel()
    dp = np.asarray(present[prod_rows].sum(axis=0)).ravel()
    n, m = max(train_rows.size, 1), max(prod_rows.size, 1)
    a = 0.5
    lp = np.log((dp + a) / (m - dp + a))
    lt = np.log((dt + a) / (n - dt + a))
    z = (lp - lt) / np.sqrt(1 / (dp + a) + 1 / (m - dp + a) + 1 / (dt + a) + 1 / (n - dt + a))
    delta = lp - lt
    out: list[tuple[Term, ...]] = []
    for sign, rows, df, size in ((-1.0, train_rows, dt, n), (1.0, prod_rows, dp, m)):
        ok = np.flatnonzero((sign * z > _TERM_Z) & (df >= max(3.0, 0.01 * size)))
        order = ok[np.argsort(-sign * delta[ok], kind="stable")][:k * 4]
        counts = present[rows][:, order].tocsc()
        readers = sorted({int(counts.indices[counts.indptr[j]]) for j in range(order.size)
                          if counts.indptr[j + 1] > counts.indptr[j]})
        names = space.terms(order.tolist(), [int(rows[r]) for r in readers])
        terms: list[Term] = []
        seen: set[str] = set()
        for col in order.tolist():
            name = names.get(col)
            if name is None or name in seen or (" " in name and set(name.split()) <= seen):
                continue
            seen.add(name)
            terms.append(Term(name, float(dt[col] / n), float(dp[col] / m), float(z[col])))
            if len(terms) == k:
                break
        out.append(tuple(terms))
    return out[0], out[1]


_TERM_Z = 3.29  # two-sided p < 0.001


def _least_covered(space: TextSpace, prod_rows: np.ndarray, ref_rows: np.ndarray, k: int,
                   nearest: tuple[np.ndarray, np.ndarray] | None) -> tuple[Example, ...]:
    if not prod_rows.size or not ref_rows.size or k <= 0:
        return ()
    best, sim = nearest if nearest is not None else space.nearest(prod_rows, ref_rows)
    order = np.argsort(sim, kind="stable")[:k]
    return tuple(Example(_clip(space.texts[prod_rows[i]]), float(sim[i]), _clip(space.texts[ref_rows[best[i]]]),
                         int(prod_rows[i]), int(ref_rows[best[i]])) for i in order.tolist())


def _clip(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"


# --- coverage ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class UncoveredCluster:
    size: int  # production texts (of the sample) in it
    share: float  # of the production sample
    holdout: int  # held-out training texts that fell in it (expected about size * holdout share)
    p_value: float  # binomial: this many production texts among the cluster by chance
    flagged: bool
    examples: tuple[str, ...]  # production texts nearest its centre


@dataclass(frozen=True)
class Coverage:
    threshold: float  # cosine to the nearest training text below which a text is uncovered
    uncovered_share: float  # of production texts
    expected_share: float  # of held-out training texts (the same test run inside training)
    n_prod: int
    n_holdout: int
    n_reference: int
    clusters: tuple[UncoveredCluster, ...]  # largest first
    message: str

    @property
    def flagged(self) -> bool:
        return any(c.flagged for c in self.clusters)

    def to_dict(self) -> dict[str, Any]:
        d = _rounded({k: v for k, v in self.__dict__.items() if k != "clusters"})
        d["flagged"] = self.flagged
        d["clusters"] = [_rounded(c.__dict__) for c in self.clusters]
        return d


def coverage(space: TextSpace, reference_rows: np.ndarray, holdout_rows: np.ndarray, prod_rows: np.ndarray, *,
             settings: SkewSettings = SkewSettings(), seed: int = 0,
             nearest: tuple[np.ndarray, np.ndarray] | None = None) -> Coverage:
    """Share of production texts with no similar training text, and where they cluster.

    A text is *uncovered* when its nearest reference (training) text has a TF-IDF cosine below
    the threshold: by default the `coverage_quantile` of the held-out training texts' own
    nearest-neighbour cosines, so about 5 % of training is "uncovered" by the rest of training
    and production is judged against the same yardstick. Uncovered production and held-out
    texts are clustered together (k-means on `TextSpace.embedding`); a cluster is production traffic
    without training coverage when it holds at least `cluster_min_share` of production and so
    few held-out texts that chance explains it with probability below `cluster_p` (binomial,
    each uncovered text being production with probability n_prod / (n_prod + n_holdout)).
    Under one distribution uncovered texts of both kinds mix, and no cluster is flagged.
    """
    _, h_sim = space.nearest(holdout_rows, reference_rows)
    _, p_sim = nearest if nearest is not None else space.nearest(prod_rows, reference_rows)
    if settings.coverage_threshold is not None:
        threshold = settings.coverage_threshold
    else:
        threshold = float(np.quantile(h_sim, settings.coverage_quantile)) if h_sim.size else 0.0
    p_out, h_out = prod_rows[p_sim < threshold], holdout_rows[h_sim < threshold]
    share = p_out.size / max(prod_rows.size, 1)
    expected = h_out.size / max(holdout_rows.size, 1)
    clusters = _uncovered_clusters(space, p_out, h_out, prod_rows.size, holdout_rows.size, settings, seed)
    flagged = [c for c in clusters if c.flagged]
    message = (f"{share:.1%} of production texts have no training text with cosine >= {threshold:.2f} "
               f"(held-out training texts: {expected:.1%})")
    if flagged:
        message += (f"; {len(flagged)} cluster(s) of production traffic without training coverage, "
                    f"{sum(c.share for c in flagged):.1%} of production")
    return Coverage(threshold, share, expected, int(prod_rows.size), int(holdout_rows.size),
                    int(reference_rows.size), clusters, message)


def _uncovered_clusters(space: TextSpace, p_out: np.ndarray, h_out: np.ndarray, n_prod: int, n_holdout: int,
                        settings: SkewSettings, seed: int) -> tuple[UncoveredCluster, ...]:
    from scipy.stats import binom
    rows = np.concatenate([p_out, h_out])
    if p_out.size < 2:
        return ()
    k = int(np.clip(round(math.sqrt(rows.size / 2)), 1, 12))
    labels, centres = _kmeans(space.embedding[rows], k, seed)
    is_prod = np.arange(rows.size) < p_out.size
    share_prod = n_prod / max(n_prod + n_holdout, 1)
    out: list[UncoveredCluster] = []
    for c in range(k):
        members = np.flatnonzero(labels == c)
        a = int(is_prod[members].sum())
        b = members.size - a
        if a == 0:
            continue
        p = float(binom.sf(a - 1, a + b, share_prod))
        flagged = a >= settings.cluster_min_share * n_prod and p < settings.cluster_p
        prod_members = members[is_prod[members]]
        examples = _representatives(space, rows[prod_members], centres[c], settings.cluster_examples)
        out.append(UncoveredCluster(a, a / max(n_prod, 1), b, p, flagged, examples))
    out.sort(key=lambda c: -c.size)
    return tuple(out)


def _kmeans(x: np.ndarray, k: int, seed: int, iterations: int = 25) -> tuple[np.ndarray, np.ndarray]:
    """Spherical k-means on unit rows: k-means++ seeding (on at most 2,000 rows), then Lloyd
    steps on cosine similarity. numpy only (sklearn's KMeans spends seconds in thread pools on
    2 cores for these sizes); deterministic for a seed."""
    import scipy.sparse as sp
    n = x.shape[0]
    k = max(1, min(k, n))
    rng = np.random.default_rng([seed, k])
    pool = x[rng.choice(n, min(n, 2000), replace=False)] if n > 2000 else x
    centres = np.empty((k, x.shape[1]), dtype=np.float32)
    centres[0] = pool[rng.integers(pool.shape[0])]
    dist = 1.0 - pool @ centres[0]
    for j in range(1, k):
        w = np.maximum(dist, 0.0) ** 2
        total = float(w.sum())
        pick = int(rng.choice(pool.shape[0], p=w / total)) if total > 0 else int(rng.integers(pool.shape[0]))
        centres[j] = pool[pick]
        dist = np.minimum(dist, 1.0 - pool @ centres[j])
    labels = np.full(n, -1, dtype=np.int64)
    for _ in range(iterations):
        new = (x @ centres.T).argmax(axis=1)
        if np.array_equal(new, labels):
            break
        labels = new
        sums = np.asarray(sp.csr_matrix((np.ones(n, dtype=np.float32), (labels, np.arange(n))), shape=(k, n)) @ x,
                          dtype=np.float64)
        norms = np.linalg.norm(sums, axis=1, keepdims=True)
        empty = norms[:, 0] == 0
        sums[~empty] /= norms[~empty]
        sums[empty] = centres[empty]
        centres = sums.astype(np.float32)
    return labels, centres


def _representatives(space: TextSpace, rows: np.ndarray, centre: np.ndarray, k: int) -> tuple[str, ...]:
    if not rows.size:
        return ()
    sims = space.embedding[rows] @ centre
    order = np.argsort(-sims, kind="stable")[:k]
    return tuple(_clip(space.texts[rows[i]]) for i in order.tolist())


# --- composition ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cluster:
    size: int  # training texts of the sample in it
    share: float  # of the training sample
    prod_share: float | None  # of the production sample (nearest centre), when one is given
    topic: int  # clusters whose centres are alike form one topic (index into Composition.topics)
    terms: tuple[str, ...]  # terms most above their average weight in it
    examples: tuple[str, ...]  # training texts nearest its centre


@dataclass(frozen=True)
class Composition:
    n: int  # training texts clustered
    k: int  # k-means clusters: round(sqrt(n / 20)) within [4, 32]
    topics: tuple[float, ...]  # share of the training sample per topic, largest first
    largest_share: float  # of the largest topic
    effective_topics: float  # exp(entropy of the topic shares): 1 when one topic holds all
    effective_clusters: float  # the same over the k clusters (k when even)
    clusters: tuple[Cluster, ...]  # largest first
    message: str

    def to_dict(self) -> dict[str, Any]:
        d = _rounded({k: v for k, v in self.__dict__.items() if k != "clusters"})
        d["clusters"] = [_rounded(c.__dict__) for c in self.clusters]
        return d


_TOPIC_COSINE = 0.6  # cluster centres at least this alike (average linkage) are one topic


def composition(space: TextSpace, train_rows: np.ndarray, prod_rows: np.ndarray | None = None, *,
                settings: SkewSettings = SkewSettings(), seed: int = 0) -> Composition:
    """Cluster the training texts: sizes, representatives, dominance and diversity.

    Spherical k-means on `TextSpace.embedding` with k = round(sqrt(n / 20)) within [4, 32]
    (a number of clusters fine enough to show sub-topics; silhouette scores, tried first,
    rise with k on text and would pick the largest). Clusters whose centres have an
    average-linkage cosine of at least 0.6 are then merged into *topics*: k-means splits a big
    homogeneous mass into several clusters, and the topics put it back together, so "one
    subject holds 80 % of the data" shows as one topic of 0.8 whatever k is. Effective
    numbers are exp of the entropy of the shares. Production texts, when given, go to the
    nearest centre.
    """
    from scipy.cluster.hierarchy import fcluster, linkage

    x = space.embedding[train_rows]
    n = x.shape[0]
    if n < 8:
        return Composition(n, 1, (1.0,), 1.0, 1.0, 1.0, (), f"{n} training texts: too few to cluster")
    k = int(np.clip(round(math.sqrt(n / 20)), settings.composition_k[0], settings.composition_k[1]))
    k = min(k, n // 2)
    labels, centres = _kmeans(x, k, seed)
    sizes = np.bincount(labels, minlength=k)
    live = np.flatnonzero(sizes)
    topic_of = np.zeros(k, dtype=np.int64)
    if live.size > 1:
        # Cosine distances computed here: a centre of texts with no term in the vocabulary is a
        # zero vector, whose cosine scipy leaves undefined (NaN); it is then unlike every other.
        unit = centres[live].astype(np.float64)
        norms = np.linalg.norm(unit, axis=1)
        unit = np.divide(unit, norms[:, None], out=np.zeros_like(unit), where=norms[:, None] > 0)
        distance = np.clip(1 - unit @ unit.T, 0, 2)
        tree = linkage(distance[np.triu_indices(live.size, 1)], method="average")
        topic_of[live] = fcluster(tree, t=1 - _TOPIC_COSINE, criterion="distance") - 1
    topic_sizes = np.bincount(topic_of[labels])
    order = np.argsort(-topic_sizes, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    topic_shares = topic_sizes[order] / n
    shares = sizes / n
    prod_shares = None
    if prod_rows is not None and prod_rows.size:
        nearest_centre = (space.embedding[prod_rows] @ centres.T).argmax(axis=1)
        prod_shares = np.bincount(nearest_centre, minlength=k) / prod_rows.size
    terms = _cluster_terms(space, train_rows, labels, k)
    clusters = []
    for c in np.argsort(-sizes, kind="stable").tolist():
        if not sizes[c]:
            continue
        members = train_rows[labels == c]
        clusters.append(Cluster(int(sizes[c]), float(shares[c]), None if prod_shares is None else float(prod_shares[c]),
                                int(rank[topic_of[c]]), terms.get(c, ()),
                                _representatives(space, members, centres[c], settings.cluster_examples)))
    topics = tuple(float(t) for t in topic_shares if t > 0)
    eff_topics, eff_clusters = _effective(np.array(topics)), _effective(shares)
    message = (f"{len(topics)} topic(s) in {k} clusters of {n:,} training texts; the largest topic holds "
               f"{topics[0]:.1%}; effective number of topics {eff_topics:.1f}, of clusters {eff_clusters:.1f}")
    return Composition(n, k, topics, topics[0], eff_topics, eff_clusters, tuple(clusters), message)


def _effective(shares: np.ndarray) -> float:
    nz = shares[shares > 0]
    return float(math.exp(-(nz * np.log(nz)).sum())) if nz.size else 0.0


def _cluster_terms(space: TextSpace, rows: np.ndarray, labels: np.ndarray, k: int, top: int = 5) -> dict[int, tuple[str, ...]]:
    m = space.matrix[rows]
    overall = np.asarray(m.mean(axis=0)).ravel()
    wanted: dict[int, list[int]] = {}
    for c in range(k):
        members = np.flatnonzero(labels == c)
        if not members.size:
            continue
        lift = np.asarray(m[members].mean(axis=0)).ravel() - overall
        wanted[c] = np.argsort(-lift, kind="stable")[:top].tolist()
    cols = sorted({j for js in wanted.values() for j in js})
    sub = m[:, cols].tocsc()
    readers = sorted({int(rows[sub.indices[sub.indptr[i]]]) for i in range(len(cols)) if sub.indptr[i + 1] > sub.indptr[i]})
    names = space.terms(cols, readers)
    return {c: tuple(names[j] for j in js if j in names) for c, js in wanted.items()}


# --- labels of classification-style data --------------------------------------------------------------


@dataclass(frozen=True)
class LabelBalance:
    classification: bool  # short answers drawn from a small set
    n: int
    labels: tuple[tuple[str, int], ...]  # (label, count), most frequent first (at most 50)
    imbalance_ratio: float  # most / least frequent label
    majority_share: float
    message: str

    def to_dict(self) -> dict[str, Any]:
        d = _rounded({k: v for k, v in self.__dict__.items() if k != "labels"})
        d["labels"] = [{"label": label, "count": c} for label, c in self.labels]
        return d


def label_balance(answers: Sequence[str], *, max_chars: int = 40, max_labels: int = 50,
                  min_coverage: float = 0.95) -> LabelBalance:
    """Counts per label when the answers look like class labels.

    Classification-style: at least 20 answers, `min_coverage` of them at most `max_chars`
    characters, and at most `max_labels` distinct labels (case-folded, trimmed of whitespace
    and final punctuation), each used on average at least 5 times, covering `min_coverage`.
    """
    norm = [" ".join(a.split()).strip(" .!").casefold() for a in answers]
    n = len(norm)
    counts = Counter(norm).most_common()
    short = sum(len(a) <= max_chars for a in norm) / max(n, 1)
    top = counts[:max_labels]
    covered = sum(c for _, c in top) / max(n, 1)
    classification = (n >= 20 and short >= min_coverage and covered >= min_coverage and len(counts) <= max_labels
                      and n / max(len(counts), 1) >= 5)
    if not classification or not top:
        return LabelBalance(False, n, tuple(top[:10]), 1.0, top[0][1] / n if top else 0.0,
                            "the answers do not look like class labels")
    ratio = top[0][1] / top[-1][1]
    majority = top[0][1] / n
    shown = ", ".join(f"{label!r} {c:,}" for label, c in top[:5])
    message = f"{len(top)} labels over {n:,} answers ({shown}); imbalance ratio {ratio:.1f}"
    return LabelBalance(True, n, tuple(top), float(ratio), float(majority), message)


# --- how many production samples are enough -------------------------------------------------------------


@dataclass(frozen=True)
class SampleSize:
    n_prod: int
    required: int | None  # None: no production size is enough with this few training records
    sufficient: bool
    message: str


def required_production_size(numeric: Sequence[NumericShift], *, settings: SkewSettings = SkewSettings(),
                             n_prod: int | None = None) -> SampleSize:
    """The fewest production records for which a shift of `min_effect` would be flagged.

    Each numeric test's critical value shrinks like c * sqrt(1/n + 1/m) (n training, m
    production); solving critical(m) <= min_effect with c read off the null at the actual sizes
    gives the m needed for that feature; the requirement is the largest over the count features
    (lengths, tokens, turns: the ones every dataset has). The classifier needs far fewer: at AUC
    0.75 its 95 % interval is +/-0.1 wide from about 45 texts a side (Hanley & McNeil), and
    5-fold validation wants 10 a fold; 50 is the floor.
    """
    need = 50
    m_actual = n_prod if n_prod is not None else (numeric[0].n_prod if numeric else 0)
    for s in numeric:
        spec = FEATURES.get(s.feature)
        if spec is None or spec.kind != "count" or s.critical <= 0:
            continue
        c = s.critical / math.sqrt(1 / max(s.n_train, 1) + 1 / max(s.n_prod, 1))
        room = (settings.min_effect / c) ** 2 - 1 / max(s.n_train, 1)
        if room <= 0:
            return SampleSize(m_actual, None, False,
                              f"{m_actual:,} production samples; with {s.n_train:,} training records no production "
                              f"sample is large enough to see a shift of {settings.min_effect:g} standard deviations")
        need = max(need, math.ceil(1 / room))
    sufficient = m_actual >= need
    message = (f"{m_actual:,} production samples; a comparison that can see a shift of "
               f"{settings.min_effect:g} training standard deviations needs at least {need:,}")
    return SampleSize(m_actual, need, sufficient, message)


# --- everything at once -----------------------------------------------------------------------------


@dataclass(frozen=True)
class SkewAnalysis:
    numeric: tuple[NumericShift, ...]
    categorical: tuple[CategoricalShift, ...]
    domain: DomainShift | None
    coverage: Coverage | None
    composition: Composition | None
    labels: LabelBalance | None
    sample_size: SampleSize | None
    samples: dict[str, int]  # how many records / texts each step saw

    @property
    def flags(self) -> list[str]:
        """Names of everything flagged at warning level or above (for tests and summaries)."""
        out = [f"numeric:{s.feature}" for s in self.numeric if s.flagged]
        out += [f"categorical:{s.feature}" for s in self.categorical if s.flagged]
        if self.domain is not None and self.domain.flagged:
            out.append(f"domain:{self.domain.level}")
        if self.coverage is not None and self.coverage.flagged:
            out.append("coverage")
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "numeric": [s.to_dict() for s in self.numeric],
            "categorical": [s.to_dict() for s in self.categorical],
            "domain": self.domain.to_dict() if self.domain else None,
            "coverage": self.coverage.to_dict() if self.coverage else None,
            "composition": self.composition.to_dict() if self.composition else None,
            "labels": self.labels.to_dict() if self.labels else None,
            "sample_size": _rounded(self.sample_size.__dict__) if self.sample_size else None,
            "samples": dict(self.samples),
            "flags": self.flags,
        }


def analyse(train: Side, prod: Side | None = None, *, settings: SkewSettings = SkewSettings(), seed: int = 0,
            specs: Mapping[str, FeatureSpec] | None = None,
            labels: Mapping[str, Mapping[Any, str]] | None = None) -> SkewAnalysis:
    """Compare `train` with `prod` (skew), and describe `train` alone (composition, labels).

    Deterministic for the same inputs, settings and seed. Texts beyond the caps are
    subsampled with the seed; `samples` reports every size used.
    """
    specs = {**FEATURES, **(specs or {})}
    rng = np.random.default_rng([seed, 1])
    train_texts = _subsample(list(train.texts), settings.train_texts, rng)
    prod_texts = _subsample(list(prod.texts), settings.prod_texts, rng) if prod is not None else []
    samples = {"train_records": train.records, "train_texts": len(train_texts)}
    numeric: list[NumericShift] = []
    categorical: list[CategoricalShift] = []
    if prod is not None:
        samples.update(prod_records=prod.records, prod_texts=len(prod_texts))
        for name in [f for f in train.numeric if f in prod.numeric]:
            if len(train.numeric[name]) and len(prod.numeric[name]):
                numeric.append(numeric_shift(name, train.numeric[name], prod.numeric[name], spec=specs.get(name),
                                             settings=settings, seed=seed))
        for name in [f for f in train.categorical if f in prod.categorical]:
            if len(train.categorical[name]) and len(prod.categorical[name]):
                categorical.append(categorical_shift(name, train.categorical[name], prod.categorical[name],
                                                     labels=(labels or {}).get(name), settings=settings, seed=seed))
    texts = train_texts + prod_texts
    space = TextSpace(texts, head=settings.head_tokens, tail=settings.tail_tokens, dims=settings.embedding_dims,
                      seed=seed) if texts else None
    t_rows = np.arange(len(train_texts))
    p_rows = np.arange(len(train_texts), len(texts))
    domain = cover = None
    if space is not None and prod is not None and t_rows.size >= 2 and p_rows.size >= 2:
        holdout_n = min(p_rows.size, t_rows.size // 4)
        perm = rng.permutation(t_rows.size)
        holdout, reference = np.sort(t_rows[perm[:holdout_n]]), np.sort(t_rows[perm[holdout_n:]])
        classifier_train = np.sort(rng.choice(t_rows, min(t_rows.size, settings.classifier_train), replace=False))
        samples.update(classifier_train=int(classifier_train.size), classifier_prod=int(p_rows.size),
                       coverage_reference=int(reference.size), coverage_holdout=int(holdout.size))
        nearest = space.nearest(p_rows, reference)
        cover = coverage(space, reference, holdout, p_rows, settings=settings, seed=seed, nearest=nearest)
        domain = domain_shift(space, classifier_train, p_rows, reference_rows=reference, settings=settings,
                              seed=seed, nearest=nearest)
    comp = composition(space, t_rows, p_rows if prod is not None else None, settings=settings, seed=seed) \
        if space is not None and t_rows.size else None
    label_stats = label_balance(train.answers) if train.answers is not None else None
    size = required_production_size(numeric, settings=settings, n_prod=prod.records) if prod is not None else None
    return SkewAnalysis(tuple(numeric), tuple(categorical), domain, cover, comp, label_stats, size, samples)


def _subsample(texts: list[str], cap: int, rng: np.random.Generator) -> list[str]:
    if len(texts) <= cap:
        return texts
    keep = np.sort(rng.choice(len(texts), cap, replace=False))
    return [texts[i] for i in keep.tolist()]


def _name_seed(name: str) -> int:
    return int.from_bytes(name.encode("utf-8")[:8].ljust(8, b"\0"), "little")


def _rounded(d: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, float):
            out[k] = round(v, 6) if math.isfinite(v) else None
        elif isinstance(v, tuple):
            out[k] = list(v)
        else:
            out[k] = v
    return out
