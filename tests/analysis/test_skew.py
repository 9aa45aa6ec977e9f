"""Training-serving skew and composition statistics (`sftgate.analysis.skew`, `textfeatures`).

The quality scenario is ../shared/data/bench/skew (README section 3): a DialogSum training set
and three production samples, one from the same distribution, one of another style and domain,
one with prompts three times longer. The false-alarm test splits one pool of real texts in two
random halves: every human and model turn of ShareGPT (first 3,000 conversations), Alpaca 5000
(instruction + input, and output), LIMA (instruction, output) and DialogSum train + dev
(dialogue, summary): 46,877 non-empty texts, shuffled, which is one distribution.
"""

from __future__ import annotations

import json
from functools import cache, lru_cache
from pathlib import Path

import numpy as np
import pytest
from realpool import real_texts

from sftgate.analysis import skew
from sftgate.analysis.textfeatures import (
    CATEGORICAL,
    NAMES,
    NUMERIC,
    SCRIPTS,
    feature_columns,
    merge_columns,
    prompt_features,
    system_key,
)

SHARED = Path(__file__).resolve().parents[3] / "shared"
BENCH = SHARED / "data" / "bench" / "skew"
REAL = SHARED / "data" / "real"

pytestmark = pytest.mark.skipif(not BENCH.is_dir(), reason="../shared/data/bench/skew is not there")


def _prompt(record: dict) -> tuple[str, str]:
    system = record.get("systemInstruction")
    sys_text = "\n".join(p.get("text", "") for p in system["parts"]) if system else ""
    user = "\n".join(p.get("text", "") for c in record["contents"] if c["role"] == "user" for p in c["parts"])
    return sys_text, user


def _side(texts: list[str], systems: list[str] | None = None) -> skew.Side:
    """Features of the user text; the classifier text is system instruction + user turns."""
    cols = feature_columns(texts)
    systems = systems if systems is not None else [""] * len(texts)
    keys = np.array([system_key(s) for s in systems], dtype=np.uint64)
    full = [f"{s}\n{t}".strip() for s, t in zip(systems, texts, strict=True)]
    return skew.Side(numeric={k: cols[k] for k in NUMERIC},
                     categorical={**{k: cols[k] for k in CATEGORICAL}, "system": keys}, texts=full)


@cache
def _bench(name: str) -> skew.Side:
    pairs = [_prompt(json.loads(line)) for line in (BENCH / f"{name}.jsonl").read_text("utf-8").splitlines()]
    return _side([u for _, u in pairs], [s for s, _ in pairs])


@cache
def _compare(name: str) -> skew.SkewAnalysis:
    return skew.analyse(_bench("train"), _bench(name), seed=0)


@lru_cache(maxsize=1)
def _pool() -> tuple[list[str], dict[str, np.ndarray]]:
    texts = real_texts(REAL)
    return texts, feature_columns(texts)


# --- the bench scenario -----------------------------------------------------------------------------


def test_same_distribution_is_not_flagged():
    a = _compare("prod_same")
    assert a.flags == []
    assert a.domain.auc < 0.6 and a.domain.level is None
    assert not a.coverage.flagged
    assert a.sample_size.sufficient


def test_other_domain_and_style_is_flagged_with_sensible_terms():
    a = _compare("prod_shifted")
    assert a.domain.level == "error" and a.domain.auc > 0.95
    train_terms = {t.term for t in a.domain.train_terms}
    prod_terms = {t.term for t in a.domain.prod_terms}
    assert {"person1", "person2", "dialogue"} <= train_terms  # DialogSum's "#Person1#:" markers
    assert prod_terms & {"write", "write a", "generate", "create", "given", "the following", "list"}
    assert not train_terms & prod_terms
    assert {"numeric:chars", "categorical:system"} <= set(a.flags)
    chars = next(s for s in a.numeric if s.feature == "chars")
    assert "shorter" in chars.message and chars.ratio < 0.2
    assert a.coverage.flagged and a.coverage.uncovered_share > 0.3
    assert a.domain.least_covered and all(e.similarity < a.coverage.threshold for e in a.domain.least_covered)


def test_longer_prompts_are_flagged_on_length_not_domain():
    a = _compare("prod_length")
    flagged = {s.feature for s in a.numeric if s.flagged}
    assert {"chars", "words"} <= flagged
    assert a.domain.auc < 0.75 and a.domain.level is None
    assert not a.coverage.flagged
    chars = next(s for s in a.numeric if s.feature == "chars")
    assert chars.message == "production prompts are 3.3x longer (median 2,146 vs 653 characters)"
    assert not any(s.flagged for s in a.categorical)


def test_report_is_json_ready_and_deterministic():
    a = _compare("prod_shifted")
    again = skew.analyse(_bench("train"), _bench("prod_shifted"), seed=0)
    assert json.dumps(a.to_dict(), sort_keys=True) == json.dumps(again.to_dict(), sort_keys=True)
    assert a.samples["classifier_prod"] == 1000 and a.samples["coverage_holdout"] == 750


# --- no false alarm on one distribution ----------------------------------------------------------


@pytest.mark.parametrize("size", [200, 2000, 20000])
def test_two_halves_of_one_distribution_are_not_flagged(size):
    texts, cols = _pool()
    order = np.random.default_rng(size).permutation(len(texts))[:2 * size]

    def side(idx: np.ndarray) -> skew.Side:
        return skew.Side(numeric={k: cols[k][idx] for k in NUMERIC}, categorical={k: cols[k][idx] for k in CATEGORICAL},
                         texts=[texts[i] for i in idx.tolist()])

    a = skew.analyse(side(order[:size]), side(order[size:]), seed=1)
    assert a.flags == []
    assert a.domain.auc < 0.6
    assert all(s.distance < s.critical or s.distance < 0.2 for s in a.numeric)


# --- the parts ---------------------------------------------------------------------------------------


def test_numeric_shift_needs_both_significance_and_effect():
    rng = np.random.default_rng(0)
    base = rng.lognormal(6, 0.5, 200_000)
    small_real = skew.numeric_shift("chars", base, rng.lognormal(6.03, 0.5, 50_000))
    assert small_real.distance > small_real.critical and not small_real.flagged  # real, but tiny
    noisy = skew.numeric_shift("chars", base[:30], base[-30:])  # one distribution, 30 values a side
    assert noisy.distance > 0.2 and noisy.distance < noisy.critical and not noisy.flagged  # large, but noise
    tripled = skew.numeric_shift("chars", base, 3 * rng.lognormal(6, 0.5, 5000))
    assert tripled.flagged and tripled.message.startswith("production prompts are 3.0x longer")


def test_categorical_shift_names_the_categories_that_moved():
    train = np.array([1] * 950 + [2] * 50)
    prod = np.array([1] * 600 + [2] * 400)
    s = skew.categorical_shift("script", train, prod)
    assert s.flagged and s.linf == pytest.approx(0.35)
    assert s.changes[0].category in ("latin", "cjk") and "cjk 5.0% -> 40.0%" in s.message
    same = skew.categorical_shift("question", np.array([0, 1] * 50), np.array([1, 0] * 40))
    assert not same.flagged


def test_composition_flags_a_dominant_subject():
    texts, _ = _pool()
    dialogues = list(_bench("train").texts[:1600])  # "Summarize the dialogue." + a dialogue
    others = [t for t in texts if "#Person1#" not in t][:400]
    c = skew.composition(skew.TextSpace(dialogues + others), np.arange(2000))
    assert c.largest_share >= 0.75 and c.effective_topics < 2.5
    top = next(cl for cl in c.clusters if cl.topic == 0)
    assert top.examples[0].startswith("Summarize the dialogue.")
    mixed = skew.composition(skew.TextSpace(texts[:2000]), np.arange(2000))
    assert mixed.largest_share < 0.6 and mixed.effective_topics > c.effective_topics


def test_label_balance_of_classification_style_answers():
    answers = ["Positive"] * 90 + ["negative."] * 9 + ["Neutral"] * 1
    b = skew.label_balance(answers)
    assert b.classification and dict(b.labels) == {"positive": 90, "negative": 9, "neutral": 1}
    assert b.imbalance_ratio == 90 and b.majority_share == 0.9
    free = skew.label_balance([f"The answer is {i} because of reasons." for i in range(100)])
    assert not free.classification


def test_required_production_size():
    a = _compare("prod_same")
    assert a.sample_size.required is not None and 100 < a.sample_size.required <= 1000
    tiny = skew.analyse(_bench("train"), skew.Side(numeric={k: v[:40] for k, v in _bench("prod_same").numeric.items()}))
    assert tiny.sample_size is not None and not tiny.sample_size.sufficient


def test_bottom_k_sample_is_the_same_for_any_chunking():
    positions = np.arange(10_000)
    whole = skew.bottom_k(skew.sample_priority(positions, 7), 100)
    chunks = [positions[i:i + 1234] for i in range(0, 10_000, 1234)]
    kept = np.concatenate([c[skew.bottom_k(skew.sample_priority(c, 7), 100)] for c in chunks])
    merged = kept[skew.bottom_k(skew.sample_priority(kept, 7), 100)]
    assert merged.tolist() == positions[whole].tolist()


# --- textfeatures ----------------------------------------------------------------------------------


def test_prompt_features():
    f = dict(zip(NAMES, prompt_features("# Plan\n- one\n- two\nSee https://x.org and {\"a\": 1}. Why?"), strict=True))
    assert f["lines"] == 4 and f["markdown_share"] == 0.75 and f["has_url"] == 1 and f["has_json"] == 1
    assert f["question"] == 1 and SCRIPTS[f["script"]] == "latin"
    code = dict(zip(NAMES, prompt_features("Fix this:\n```python\ndef f(x):\n    return x\n```"), strict=True))
    assert code["code_share"] > 0.5
    cjk = dict(zip(NAMES, prompt_features("日本語のテキストです。これは何ですか？"), strict=True))
    assert SCRIPTS[cjk["script"]] == "cjk" and cjk["question"] == 1 and cjk["words"] >= 15
    assert SCRIPTS[dict(zip(NAMES, prompt_features("Привет, как дела?"), strict=True))["script"]] == "cyrillic"
    assert prompt_features("") == (0.0,) * 8 + (0, 0, 0, 0)


def test_feature_columns_merge_and_batching():
    texts = ["Hello world?", "", "x" * 10, "two\nlines"]
    whole = feature_columns(texts)
    merged = merge_columns([feature_columns(texts[:1]), feature_columns(texts[1:])])
    for name in NAMES:
        assert np.array_equal(whole[name], merged[name])
    assert whole["words"].tolist() == [2, 0, 1, 2] and whole["chars"].tolist() == [12, 0, 10, 9]
    assert system_key(None) == 0 and system_key("a  b") == system_key("a b") != 0
