"""The report's `tokens` section: what the job will bill, and advice from Google's guidance.

Nothing here is a rule with findings: it reads the token statistics of the training and
validation files (`rules.tokens.summarise`) and the profile's `advice:` section (rules of
thumb, each with the guidance it comes from), and says what the data implies. Prices are
never built in: a cost line appears only when the user gives a price per million tokens.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

LOSS_SOURCE = ("Vertex AI tuning guidance: an initial training loss above 10 means examples are being "
               "truncated or dropped for length")
SHORT_CONTEXT_SOURCE = ("Google's 1.5-Flash to 2.5-Flash migration recipe (sft_gemini_migration_recipe.ipynb): "
                        "short context is average sequence <= 700 tokens with maximum <= 8,192 and fewer than "
                        "10,000 examples, or average <= 3,000 with maximum > 8,192")


def tokens_section(splits: Sequence[Mapping[str, Any]], profile: Any, *, tokenizer: Mapping[str, Any],
                   epochs: Sequence[int] | None, price_per_million: float | None) -> dict[str, Any]:
    """`splits`: each file's summary with its `split` and `source`; the first is the training file."""
    train = next((s for s in splits if s["split"] == "train"), None)
    validation = next((s for s in splits if s["split"] == "validation"), None)
    return {
        "tokenizer": dict(tokenizer),
        "limit": int(profile.limits["max_tokens_per_example"]),
        "splits": [dict(s) for s in splits],
        "billing": _billing(train, validation, profile, epochs, price_per_million),
        "advice": _advice(train, profile),
        "diagnoses": _diagnoses(train, profile),
    }


def _billing(train: Mapping[str, Any] | None, validation: Mapping[str, Any] | None, profile: Any,
             epochs: Sequence[int] | None, price: float | None) -> dict[str, Any]:
    default = int(profile.advice["default_epochs"])
    chosen = sorted(set(epochs)) if epochs else sorted({*map(int, profile.tokens["epochs"]), default})
    billable = train["billable_tokens"] if train else {"value": 0, "low": 0, "high": 0, "confidence": 0.95,
                                                        "exact": True}
    rows = []
    for e in chosen:
        row: dict[str, Any] = {"epochs": e, "tokens": billable["value"] * e, "low": billable["low"] * e,
                               "high": billable["high"] * e}
        if price is not None:
            row["cost"] = round(row["tokens"] / 1e6 * price, 2)
            row["cost_low"], row["cost_high"] = round(row["low"] / 1e6 * price, 2), round(row["high"] / 1e6 * price, 2)
        rows.append(row)
    return {
        "training_billable_tokens": billable,
        "validation_billable_tokens": validation["billable_tokens"] if validation else None,
        "default_epochs": default,
        "epochs": rows,
        "price_per_million": price,
        "note": ("training tokens x epochs, as Vertex AI bills tuning; examples over the limit are dropped and not "
                 "billed; Google's cost notebook also adds the validation tokens (shown apart here)"),
    }


def _average_context(train: Mapping[str, Any]) -> float | None:
    """Average input tokens per training record (a model turn and everything before it)."""
    mean = train["input_tokens"]["mean"]
    return None if mean is None else float(mean)


def _matches(when: Mapping[str, Any], examples: int, context: float | None) -> bool:
    if "max_examples" in when and examples > int(when["max_examples"]):
        return False
    if "min_examples" in when and examples < int(when["min_examples"]):
        return False
    if "max_average_context" in when and (context is None or context > float(when["max_average_context"])):
        return False
    return not ("min_average_context" in when and (context is None or context < float(when["min_average_context"])))


def _advice(train: Mapping[str, Any] | None, profile: Any) -> list[dict[str, Any]]:
    if train is None:
        return []
    examples, context = int(train["examples"]), _average_context(train)
    rule = next((r for r in profile.advice["hyperparameters"] if _matches(r["when"], examples, context)), None)
    if rule is None:
        return []
    basis = f"{examples:,} training examples" + (f", average context {context:,.0f} tokens" if context else "")
    out = []
    epochs = rule.get("epochs")
    out.append({"setting": "epochs", "value": epochs,
                "advice": "leave unset: the service chooses by dataset size" if epochs is None else f"{epochs}",
                "basis": basis, "source": rule["source"]})
    lrm = rule.get("learning_rate_multiplier")
    out.append({"setting": "learning_rate_multiplier", "value": lrm,
                "advice": "leave at the default" if lrm is None else f"{lrm:g}", "basis": basis,
                "source": rule["source"]})
    out.append(_adapter(rule.get("adapter_size"), profile, basis, rule["source"]))
    return out


def _adapter(size: int | None, profile: Any, basis: str, source: str) -> dict[str, Any]:
    allowed = sorted(int(a) for a in profile.limits["adapter_sizes"])
    target = profile.target
    if size is None:
        return {"setting": "adapter_size", "value": None, "advice": "leave at the model's default", "basis": basis,
                "source": source, "allowed": allowed}
    if size in allowed:
        return {"setting": "adapter_size", "value": size, "advice": f"{size}", "basis": basis, "source": source,
                "allowed": allowed}
    fits = [a for a in allowed if a <= size] or allowed[:1]
    chosen = fits[-1]
    return {"setting": "adapter_size", "value": chosen,
            "advice": f"{chosen} ({size} is suggested, but {target} accepts only {', '.join(map(str, allowed))})",
            "basis": basis, "source": source, "allowed": allowed}


def _diagnoses(train: Mapping[str, Any] | None, profile: Any) -> list[dict[str, Any]]:
    if train is None:
        return []
    out = []
    n = int(train["examples"])
    over = train["over_limit"]
    if over["examples"]:
        out.append({"symptom": "initial loss > 10",
                    "finding": f"{over['examples']:,} training examples ({over['share']:.1%}) are over the "
                               f"{over['limit']:,}-token limit: the service drops them (TOK001)",
                    "source": LOSS_SOURCE})
    minimum = int(profile.limits["min_recommended_examples"])
    if n < minimum:
        out.append({"symptom": "overfitting",
                    "finding": f"{n:,} training examples, fewer than the {minimum:,} recommended: the model may "
                               "memorise them; watch validation loss and lower epochs or the learning-rate "
                               "multiplier if it rises",
                    "source": "Vertex AI supervised tuning docs: start with at least 100 examples; to avoid "
                              "overfitting, lower the epochs or the learning-rate multiplier"})
    elif n < 1000:
        out.append({"symptom": "overfitting",
                    "finding": f"{n:,} training examples: a small dataset; the tuned model may overfit after a "
                               "few epochs (watch validation loss)",
                    "source": "Gemini 1.5 tuning guidance: 500+ examples for classification and extractive QA, "
                              "1,000+ for summarisation and chat"})
    examples_dist, inputs, outputs = train["example_tokens"], train["input_tokens"], train["output_tokens"]
    if examples_dist["count"]:
        average = train["billable_tokens"]["value"] / n if n else 0.0
        longest = (inputs["max"] or 0) + (outputs["max"] or 0)
        short = (average <= 700 and longest <= 8192 and n < 10_000) or (average <= 3000 and longest > 8192)
        out.append({"symptom": "average context length",
                    "finding": f"average sequence {average:,.0f} billable tokens per example, longest record about "
                               f"{longest:,} tokens (input + output): "
                               + ("a short-context dataset" if short else "not a short-context dataset"),
                    "source": SHORT_CONTEXT_SOURCE})
    return out
