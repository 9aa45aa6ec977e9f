"""Training-serving skew (SKEW) and training-set composition (COMP): rules over one `SkewResult`.

The statistics are `analysis.skew`'s; the engine (`engine/skew.py`) collects the columns and
text samples and builds the result. This module holds what the rules judge besides those
statistics (the system-instruction comparison, the composition thresholds), the rules, and the
report section.

All findings are about the training file as a whole (no line): it is what the user changes.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from sftgate.analysis.skew import SkewAnalysis, SkewSettings
from sftgate.model import Finding, Severity
from sftgate.rules.base import DatasetRule, RuleContext, family_findings, quote

# --- what the rules judge besides analysis.skew ---------------------------------------------------


@dataclass(frozen=True)
class CompositionSettings:
    """The `composition:` section of a profile."""

    min_examples: int  # COMP001 and COMP002 need at least this many training texts
    max_topic_share: float  # COMP001: the largest topic's share of the training texts
    single_task_share: float  # COMP001: from this share the topic is the data set's one task, not a dominant one
    min_diversity: float  # COMP002: effective number of clusters over k
    max_label_imbalance: float  # COMP003: most / least frequent label

    @classmethod
    def from_profile(cls, section: Mapping[str, Any]) -> CompositionSettings:
        return cls(int(section["min_examples"]), float(section["max_topic_share"]), float(section["single_task_share"]),
                   float(section["min_diversity"]), float(section["max_label_imbalance"]))


def skew_settings(section: Mapping[str, Any]) -> SkewSettings:
    """The `skew:` section of a profile as `analysis.skew` settings."""
    threshold = section["coverage_threshold"]
    return SkewSettings(
        min_effect=float(section["min_effect"]), min_share_change=float(section["min_share_change"]),
        null_sd=float(section["null_sd"]), train_texts=int(section["train_texts"]),
        prod_texts=int(section["prod_texts"]), classifier_train=min(int(section["train_texts"]), 5000),
        auc_warn=float(section["auc_warning"]), auc_error=float(section["auc_error"]),
        coverage_quantile=float(section["coverage_quantile"]),
        coverage_threshold=None if threshold is None else float(threshold),
        cluster_min_share=float(section["cluster_min_share"]),
    )


@dataclass(frozen=True)
class SystemComparison:
    """Which system instructions training and production use (SKEW004).

    A variant is one instruction text (whitespace collapsed), hashed. A variant one side uses
    counts as missing from the other only when the other side is large enough to show it: at
    least `_EXPECTED` uses expected there at the share it has on the first side (so a rare
    variant that a small production sample happens not to contain is not a mismatch).
    """

    train_share: float  # training examples with a system instruction
    prod_share: float
    train_variants: int
    prod_variants: int
    train_only_share: float  # training examples whose variant production should show and does not
    prod_only_share: float  # production prompts whose variant training should show and does not
    flagged: bool
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in self.__dict__.items()}


_EXPECTED = 5.0  # uses expected on the other side before a variant's absence counts


def compare_systems(train: np.ndarray, prod: np.ndarray, min_share: float) -> SystemComparison:
    """SKEW004's comparison of two columns of system-instruction keys (0: none)."""
    n, m = max(train.size, 1), max(prod.size, 1)
    t_keys, t_counts = np.unique(train, return_counts=True)
    p_keys, p_counts = np.unique(prod, return_counts=True)

    def missing(keys: np.ndarray, counts: np.ndarray, size: int, other: np.ndarray, other_size: int) -> tuple[int, int]:
        """(examples, variants) of `keys` the other side should show and lacks (instructions only)."""
        absent = (keys != 0) & ~np.isin(keys, other) & (counts / size * other_size >= _EXPECTED)
        return int(counts[absent].sum()), int(absent.sum())

    t_missing, t_vars = missing(t_keys, t_counts, n, p_keys, m)
    p_missing, p_vars = missing(p_keys, p_counts, m, t_keys, n)
    train_share, prod_share = float((train != 0).sum() / n), float((prod != 0).sum() / m)
    train_only, prod_only = t_missing / n, p_missing / m
    parts = []
    if prod_only >= min_share:
        parts.append(f"{prod_only:.1%} of production prompts use {_variants(p_vars)} that no training example uses")
    if train_only >= min_share:
        parts.append(f"{train_only:.1%} of training examples use {_variants(t_vars)} that production never uses")
    if abs(train_share - prod_share) >= min_share and not parts:
        parts.append(f"{prod_share:.1%} of production prompts have a system instruction, {train_share:.1%} of "
                     f"training examples")
    flagged = bool(parts)
    summary = (f"system instructions: {train_share:.1%} of training examples ({int((t_keys != 0).sum())} variant(s)), "
               f"{prod_share:.1%} of production prompts ({int((p_keys != 0).sum())} variant(s))")
    return SystemComparison(train_share, prod_share, int((t_keys != 0).sum()), int((p_keys != 0).sum()),
                            float(train_only), float(prod_only), flagged, "; ".join(parts) if flagged else summary)


def _variants(n: int) -> str:
    return "a system instruction" if n == 1 else f"{n} system instructions"


@dataclass(frozen=True)
class SkewResult:
    """What the SKEW and COMP rules read: the analysis and where it came from."""

    training: str  # the training file's name (findings go there)
    production: tuple[str, ...]  # the production samples' names; () when only composition ran
    seed: int
    analysis: SkewAnalysis
    system: SystemComparison | None  # None: no production, or production without system instructions (a prompt list)
    composition: CompositionSettings
    too_few: str | None = None  # why there is no comparison at all (production too small), for SKEW005

    @property
    def composed(self) -> bool:
        """Whether the composition rules may judge: enough training texts were clustered."""
        comp = self.analysis.composition
        return comp is not None and comp.n >= self.composition.min_examples and comp.k >= 2

    def to_dict(self) -> dict[str, Any]:
        return {"training": self.training, "production": list(self.production), "seed": self.seed,
                "system": self.system.to_dict() if self.system is not None else None,
                **self.analysis.to_dict(), **({"too_few": self.too_few} if self.too_few else {})}


# --- the rules -------------------------------------------------------------------------------------


class FeatureShift(DatasetRule):
    """## What it does
    Flags a feature of the prompts whose distribution differs between the training file and the
    production sample (`--production`) by more than two samples of one distribution would.

    Compared per example: characters, words and lines of the user turns, user turns and media
    parts per example, the shares of code, Markdown, digits, capitals and punctuation, whether
    the prompt holds JSON or a URL, whether it is a question, its script and media kind; on the
    text samples also prompt tokens and language. A number is compared by the Wasserstein
    distance divided by the training spread (counts on a log scale); a category by the
    Jensen-Shannon distance. A feature is flagged only when its distance is beyond the null
    (permutations, or multinomial draws, at the real sample sizes: mean + `skew.null_sd`
    standard deviations) *and* at least a minimum effect: a fixed threshold would alarm on
    small samples, and a p-value on large ones.

    ## Why is this bad?
    A model tuned on prompts unlike those it will serve learns the wrong length, format and
    style: the most common reason a tuned model disappoints in production.

    ## Example
    "production prompts are 3.3x longer (median 2,146 vs 653 characters; distance 1.52, expected
    up to 0.26)".
    Use instead: add training examples like the production traffic, or sample the training data
    to match it.

    ## Options
    - `skew.min_effect`: the smallest numeric distance flagged, in training standard deviations (default 0.2).
    - `skew.min_share_change`: the smallest change of one category's share flagged (default 0.1).
    - `skew.null_sd`: standard deviations above the null's mean a distance must reach (default 4).
    """

    code = "SKEW001"
    name = "feature-shift"
    default_severity = Severity.WARNING

    def check(self, result: SkewResult, ctx: RuleContext) -> Iterator[Finding]:
        a = result.analysis
        for s in a.numeric:
            if s.flagged:
                yield self.finding(result.training, None, f"{s.message} (distance {s.distance:.2f}, "
                                   f"expected up to {s.critical:.2f})")
        for c in a.categorical:
            if c.flagged:
                yield self.finding(result.training, None, f"{c.message} (Jensen-Shannon {c.distance:.2f}, "
                                   f"expected up to {c.critical:.2f})")


class DomainShift(DatasetRule):
    """## What it does
    Flags a training file whose prompts a classifier tells apart from the production sample's.

    A logistic regression on hashed word and character n-grams (each text represented by its
    first 48 and last 16 tokens, so length alone does not separate them) is cross-validated on
    a seeded sample of training prompts against the production prompts. Its ROC AUC is 0.5
    when the two are indistinguishable. The finding is a warning from AUC `skew.auc_warning`
    and an error from `skew.auc_error`, and only when the interval's lower bound is above the
    AUC two samples of one distribution reach 1 % of the time at these sizes. The report lists
    the terms most typical of each side and the production prompts least like any training
    prompt, with their nearest training prompt.

    ## Why is this bad?
    When production asks about other things, in other words, the tuned model has not seen what
    it will be asked.

    ## Example
    "a classifier tells production from training texts with ROC AUC 1.00 (95 % CI 1.00-1.00);
    typical of training: dialogue, person1; of production: generate, the given".
    Use instead: collect training examples from the production domain.

    ## Options
    - `skew.auc_warning`: AUC from which the finding is a warning (default 0.75).
    - `skew.auc_error`: AUC from which it is an error (default 0.9).
    - `skew.train_texts`: training prompts sampled for the classifier, coverage and composition (default 10000).
    - `skew.prod_texts`: production prompts sampled (default 5000).
    """

    code = "SKEW002"
    name = "domain-shift"
    default_severity = Severity.WARNING
    escalates = True  # an error from skew.auc_error, whatever the configured severity below it

    def check(self, result: SkewResult, ctx: RuleContext) -> Iterator[Finding]:
        domain = result.analysis.domain
        if domain is not None and domain.level is not None:
            finding = self.finding(result.training, None, domain.message)
            if domain.level == "error":
                finding = replace(finding, severity=Severity.ERROR)
            yield finding


class UncoveredProduction(DatasetRule):
    """## What it does
    Flags a cluster of production prompts that no training prompt is similar to.

    Each production prompt's nearest training prompt is found by cosine similarity of TF-IDF
    vectors of their distinctive terms; a prompt is uncovered below the similarity that only
    `skew.coverage_quantile` of held-out training prompts fall under (the same test run inside
    the training data, so the threshold fits the data). Uncovered prompts are clustered; a
    cluster is flagged when it holds at least `skew.cluster_min_share` of production and a
    binomial test against the held-out training prompts says it is not chance. The finding
    quotes representative prompts.

    ## Why is this bad?
    Whole kinds of requests the model will receive have no example to learn from.

    ## Example
    "9.0% of production prompts form a cluster no training prompt covers (held-out training
    prompts in it: 0), e.g. "Describe the content of the article in a brief manner.…"".
    Use instead: add examples of that kind of request.

    ## Options
    - `skew.coverage_quantile`: the share of held-out training prompts that may fall below the threshold (default 0.05).
    - `skew.coverage_threshold`: a fixed cosine threshold instead (default null).
    - `skew.cluster_min_share`: the smallest share of production a flagged cluster holds (default 0.02).
    """

    code = "SKEW003"
    name = "uncovered-production"
    default_severity = Severity.WARNING

    def check(self, result: SkewResult, ctx: RuleContext) -> Iterator[Finding]:
        coverage = result.analysis.coverage
        for cluster in coverage.clusters if coverage is not None else ():
            if cluster.flagged:
                example = f", e.g. {quote(cluster.examples[0], 80)}" if cluster.examples else ""
                yield self.finding(result.training, None,
                                   f"{cluster.share:.1%} of production prompts ({cluster.size:,} of the sample) form a "
                                   f"cluster no training prompt covers (held-out training prompts in it: "
                                   f"{cluster.holdout:,}){example}")


class SystemInstructionMismatch(DatasetRule):
    """## What it does
    Flags system instructions used on one side and not the other: training examples with an
    instruction production never sends, production prompts with one no training example has,
    or a different share of examples with any instruction at all.

    Instructions are compared by their text (whitespace collapsed). A variant missing from the
    other side counts only when that side is large enough to show it (5 uses expected at the
    variant's share), and the finding needs at least `skew.system_min_share` of one side to be
    concerned. A production sample given as a plain list of prompts says nothing about system
    instructions and is not compared.

    ## Why is this bad?
    A tuned model learns its behaviour together with the instruction it was trained under; at
    serving time another instruction, or none, gives other behaviour.

    ## Example
    "100.0% of production prompts use a system instruction that no training example uses".
    Use instead: train with the instruction production sends.

    ## Options
    - `skew.system_min_share`: the share of examples (either side) a mismatch must concern (default 0.1).
    """

    code = "SKEW004"
    name = "system-instruction-mismatch"
    default_severity = Severity.WARNING

    def check(self, result: SkewResult, ctx: RuleContext) -> Iterator[Finding]:
        if result.system is not None and result.system.flagged:
            yield self.finding(result.training, None, result.system.message)


class SmallProductionSample(DatasetRule):
    """## What it does
    Says when the production sample is too small for the comparison to see a meaningful shift,
    and how many production prompts would be enough.

    The number is the smallest sample for which a shift of `skew.min_effect` training standard
    deviations in prompt length would be flagged at these training and null sizes; with fewer
    than 2 production prompts nothing is compared at all.

    ## Why is this bad?
    A comparison that finds nothing on 50 prompts does not mean there is no skew; it means 50
    prompts cannot show it.

    ## Example
    "1,000 production samples; a comparison that can see a shift of 0.2 training standard
    deviations needs at least 2,188".
    Use instead: export more production prompts.
    """

    code = "SKEW005"
    name = "small-production-sample"
    default_severity = Severity.INFO

    def check(self, result: SkewResult, ctx: RuleContext) -> Iterator[Finding]:
        size = result.analysis.sample_size
        if result.too_few:
            yield self.finding(result.training, None, result.too_few)
        elif size is not None and not size.sufficient:
            yield self.finding(result.training, None, size.message)


class DominantTopic(DatasetRule):
    """## What it does
    Flags a training set of several topics where one of them holds most of the data.

    Training prompts (a seeded sample of `skew.train_texts`) are embedded (TF-IDF of word and
    character n-grams, reduced to 64 dimensions) and clustered with k-means, k = sqrt(n / 20)
    within 4-32; clusters whose centres are alike (average-linkage cosine at least 0.6) form one
    topic. Flagged when the largest topic holds at least `composition.max_topic_share` of the
    prompts but less than `composition.single_task_share`: a data set that is one task (a
    summarisation set, say) is one topic by design and is not flagged; a mixed set that is
    mostly one template is. Needs `composition.min_examples` training examples. The report
    lists every cluster with its share (and its share of production, with `--production`),
    terms and representative prompts.

    ## Why is this bad?
    A smaller, diverse data set beats a large one that repeats one kind of example: the model
    over-fits the dominant pattern and under-learns the rest.

    ## Example
    "one topic holds 58.0% of the training prompts (5 topics in 7 clusters): terms to french,
    translate; e.g. "Translate to French: …"".
    Use instead: down-sample the dominant topic or add examples of the others.

    ## Options
    - `composition.max_topic_share`: the share from which the largest topic dominates (default 0.5).
    - `composition.single_task_share`: the share from which it is the data set's one task (default 0.9).
    - `composition.min_examples`: training examples needed before composition is judged (default 200).
    """

    code = "COMP001"
    name = "dominant-topic"
    default_severity = Severity.WARNING

    def check(self, result: SkewResult, ctx: RuleContext) -> Iterator[Finding]:
        comp, settings = result.analysis.composition, result.composition
        if not result.composed or comp is None or not comp.clusters:
            return
        if settings.max_topic_share <= comp.largest_share < settings.single_task_share:
            top = next((c for c in comp.clusters if c.topic == 0), comp.clusters[0])
            terms = f": terms {', '.join(top.terms[:4])}" if top.terms else ""
            example = f"; e.g. {quote(top.examples[0], 80)}" if top.examples else ""
            yield self.finding(result.training, None,
                               f"one topic holds {comp.largest_share:.1%} of the training prompts ({len(comp.topics)} "
                               f"topics in {comp.k} clusters){terms}{example}")


class LowDiversity(DatasetRule):
    """## What it does
    Flags a training set whose prompts spread over few of the clusters found in it.

    Diversity is the effective number of clusters, exp of the entropy of the cluster shares
    (k when every cluster is the same size, 1 when one holds everything), over k, which grows
    with the data set (k = sqrt(n / 20) within 4-32). Flagged below `composition.min_diversity`.
    A data set of one task with varied inputs is not low-diversity: its clusters are of similar
    sizes; one made of a few repeated templates is.

    ## Why is this bad?
    A few kinds of examples repeated many times teach those few patterns; more of them adds
    cost, not quality.

    ## Example
    "low diversity: the training prompts spread like 2.1 equal clusters of 12 (diversity 0.18);
    1 topic(s), the largest 100.0%".
    Use instead: add examples of other kinds, or keep fewer of the repeated ones.

    ## Options
    - `composition.min_diversity`: the effective number of clusters over k below which the set is flagged (default 0.5).
    """

    code = "COMP002"
    name = "low-diversity"
    default_severity = Severity.WARNING

    def check(self, result: SkewResult, ctx: RuleContext) -> Iterator[Finding]:
        comp = result.analysis.composition
        if not result.composed or comp is None:
            return
        diversity = comp.effective_clusters / comp.k
        if diversity < result.composition.min_diversity:
            yield self.finding(result.training, None,
                               f"low diversity: the training prompts spread like {comp.effective_clusters:.1f} equal "
                               f"clusters of {comp.k} (diversity {diversity:.2f}); {len(comp.topics)} topic(s), "
                               f"the largest {comp.largest_share:.1%}")


class LabelImbalance(DatasetRule):
    """## What it does
    Flags classification-style data whose labels are unbalanced.

    The data is classification-style when the model answers (of the training text sample) are
    short (at most 40 characters) and drawn from a small set (at most 50 labels, each used on
    average at least 5 times, covering 95 % of the answers). The finding gives the count per
    label and the imbalance ratio (most / least frequent), flagged from
    `composition.max_label_imbalance`.

    ## Why is this bad?
    A tuned model learns the label shares: with 95 % "negative" it learns to say "negative".

    ## Example
    "3 labels over 2,000 answers ('negative' 1,800, 'positive' 150, 'neutral' 50); imbalance
    ratio 36.0".
    Use instead: balance the labels (down-sample the majority, add minority examples).

    ## Options
    - `composition.max_label_imbalance`: the most/least frequent label ratio from which it is flagged (default 10).
    """

    code = "COMP003"
    name = "label-imbalance"
    default_severity = Severity.WARNING

    def check(self, result: SkewResult, ctx: RuleContext) -> Iterator[Finding]:
        labels = result.analysis.labels
        if labels is not None and labels.classification and \
                labels.imbalance_ratio >= result.composition.max_label_imbalance:
            yield self.finding(result.training, None, f"label imbalance: {labels.message}")


SKEW_RULES: tuple[type[DatasetRule], ...] = (FeatureShift, DomainShift, UncoveredProduction,
                                             SystemInstructionMismatch, SmallProductionSample)
COMP_RULES: tuple[type[DatasetRule], ...] = (DominantTopic, LowDiversity, LabelImbalance)


def findings(result: SkewResult, ctx: RuleContext, selected: Iterable[str]) -> list[Finding]:
    rules = (SKEW_RULES if result.production else ()) + COMP_RULES
    return family_findings(rules, result, ctx, selected)
