"""The report's `skew` section (issue 6): its JSON form, schema and the three human renderings.

The section is real analysis output: `analysis.skew.analyse` on 300 short training prompts
against 300 production prompts three times longer, 40 of which are of a topic training lacks
(and carry markup that must come out escaped).
"""

from __future__ import annotations

import dataclasses
import json
import random
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from test_html_report import browser  # noqa: F401 - fixture: headless chromium, skipped without it

from sftgate.analysis import skew
from sftgate.analysis.textfeatures import CATEGORICAL, NUMERIC, feature_columns
from sftgate.report import html as html_report
from sftgate.report import markdown
from sftgate.report import text as text_report
from sftgate.report.model import REPORT_VERSION, Report

EVIL = "<script>alert(1)</script>"
TOPICS = ("invoice", "refund", "shipping", "password", "delivery", "warranty")
WORDS = ("please", "help", "me", "with", "my", "order", "account", "today", "the", "a", "of", "and", "to", "again",
         "soon")


def _prompts(n: int, words: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [f"Question about the {TOPICS[i % len(TOPICS)]}: " + " ".join(rng.choice(WORDS) for _ in range(words))
            for i in range(n)]


def _side(texts: list[str], answers: list[str] | None = None) -> skew.Side:
    cols = feature_columns(texts)
    return skew.Side(numeric={k: cols[k] for k in NUMERIC}, categorical={k: cols[k] for k in CATEGORICAL},
                     texts=texts, answers=answers)


def _training() -> skew.Side:
    rng = random.Random(3)
    texts = _prompts(300, 8, seed=1)
    return _side(texts, [rng.choice(["positive", "negative", "neutral"]) for _ in texts])


def _section(analysis: skew.SkewAnalysis, training: str, production: list[str]) -> dict[str, Any]:
    """`report.skew` as the engine writes it: the files, the seed, then the analysis."""
    return {"training": training, "production": production, "seed": 0, "system": None, **analysis.to_dict()}


@pytest.fixture(scope="module")
def skew_report(family_report: Report) -> Report:
    production = _prompts(260, 24, seed=2) + [f"{EVIL} zebra quantum telescope nebula orbit {i}" for i in range(40)]
    analysis = skew.analyse(_training(), _side(production), seed=0)
    sample = dataclasses.replace(family_report.inputs[0], path="prod.jsonl", split="production")
    return dataclasses.replace(family_report, inputs=[*family_report.inputs, sample],
                               skew=_section(analysis, family_report.inputs[0].path, ["prod.jsonl"]))


@pytest.fixture(scope="module")
def composition_report(family_report: Report) -> Report:
    analysis = skew.analyse(_training(), None, seed=0)
    return dataclasses.replace(family_report, skew=_section(analysis, family_report.inputs[0].path, []))


def test_the_analysis_flagged_what_the_tests_assume(skew_report: Report) -> None:
    s = skew_report.skew
    assert {"numeric:chars", "numeric:words", "coverage"} <= set(s["flags"])
    assert s["domain"]["level"] == "error"
    assert any(EVIL in e["prod_text"] for e in s["domain"]["least_covered"])
    assert s["labels"]["classification"] and s["composition"]["clusters"]


# --- JSON ---------------------------------------------------------------------------------------

def test_json_round_trip_and_schema(skew_report: Report, family_report: Report, validate_report: Any) -> None:
    data = json.loads(json.dumps(skew_report.to_dict()))
    validate_report(data)
    assert data["report_version"] == REPORT_VERSION == "1.8"
    assert list(data)[list(data).index("tokens") + 1] == "skew" and data["skew"] == skew_report.skew
    again = Report.from_dict(data)
    assert again.skew == skew_report.skew and again.to_dict() == skew_report.to_dict()
    # Without the analysis the key is absent: a report keeps the keys of 1.6.
    plain = dataclasses.replace(family_report, skew=None).to_dict()
    assert "skew" not in plain and Report.from_dict(plain).skew is None


def test_the_schema_types_the_section(skew_report: Report, composition_report: Report,
                                      validate_report: Any) -> None:
    validate_report(json.loads(json.dumps(composition_report.to_dict())))
    broken = json.loads(json.dumps(skew_report.to_dict()))
    broken["skew"]["numeric"][0]["distance"] = "far"
    with pytest.raises(jsonschema.ValidationError):
        validate_report(broken)
    broken = json.loads(json.dumps(skew_report.to_dict()))
    del broken["skew"]["flags"]
    with pytest.raises(jsonschema.ValidationError):
        validate_report(broken)


# --- text and Markdown ------------------------------------------------------------------------------

def _flagged(report: Report) -> dict[str, Any]:
    return next(f for f in report.skew["numeric"] if f["feature"] == "chars" and f["flagged"])


def test_text_says_what_was_flagged(skew_report: Report, family_report: Report) -> None:
    out = text_report.render(skew_report)
    s, chars = skew_report.skew, _flagged(skew_report)
    d = s["domain"]
    assert (f"skew: prod.jsonl (300 records) against {s['training']} (300): classifier ROC AUC {d['auc']:.2f} "
            f"(95% CI {d['low']:.2f}-{d['high']:.2f}; chance up to {d['chance']:.2f}), error") in out
    assert f"  chars: {chars['message']}\n" in out
    assert f"  coverage: {s['coverage']['message']}\n" in out
    assert f"composition of {s['training']}: {s['composition']['message']}\n" in out
    assert f"labels of {s['training']}: {s['labels']['message']}\n" in out
    # Unflagged features take no line; the block sits before the verdict.
    assert not any(f"  {f['feature']}: " in out for f in s["numeric"] if not f["flagged"])
    assert out.index("skew: ") < out.index("Gate FAILED")
    plain = text_report.render(dataclasses.replace(family_report, skew=None))
    assert "skew: " not in plain and "composition of" not in plain


def test_markdown_tables_and_escaping(skew_report: Report) -> None:
    out = markdown.render(skew_report)
    s, chars = skew_report.skew, _flagged(skew_report)
    assert "### Skew and composition" in out
    assert re.search(rf"^\| chars \| {chars['train_median']:,.0f} \| {chars['prod_median']:,.0f} \| "
                     rf"{chars['distance']:.3f} \| {chars['critical']:.3f} \| \*\*yes\*\* \|$", out, re.MULTILINE)
    assert f"- **chars**: {markdown.text(chars['message'])}" in out
    assert "**Domain classifier**: ROC AUC" in out and "**error**" in out
    assert f"**Coverage**: {markdown.text(s['coverage']['message'])}" in out
    assert "\\<script\\>alert(1)\\</script\\> zebra quantum" in out  # an uncovered cluster's example prompt
    assert EVIL not in out
    for cluster in s["composition"]["clusters"]:
        assert f"{cluster['share']:.1%} | {cluster['prod_share']:.1%} |" in out
    assert "| label | count | share |" in out and "| neutral |" in out


def test_a_flagged_system_instruction_is_named(skew_report: Report) -> None:
    system = {"train_share": 0.3, "prod_share": 1.0, "train_variants": 2, "prod_variants": 1,
              "train_only_share": 0.3, "prod_only_share": 1.0, "flagged": True,
              "message": "every production prompt has a system instruction, 30.0% of training ones"}
    report = dataclasses.replace(skew_report, skew={**skew_report.skew, "system": system})
    assert f"  system instruction: {system['message']}\n" in text_report.render(report)
    assert f"- **system instruction**: {system['message']}" in markdown.render(report)
    section = _skew_html(html_report.render(report))
    assert system["message"] in section and "<dt>prod variants</dt><dd>1</dd>" in section


# --- HTML ---------------------------------------------------------------------------------------------

def _skew_html(page: str) -> str:
    match = re.search(r'<section id="skew"[^>]*>(.*?)</section>', page, re.DOTALL)
    assert match, "no #skew section"
    return match.group(1)


class _Balance(HTMLParser):
    """Every element the fragment opens it closes, in order (<br> is the only void element it has;
    SVG shapes close themselves with />)."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag != "br":
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        pass

    def handle_endtag(self, tag: str) -> None:
        assert self.stack and self.stack[-1] == tag, (self.stack[-3:], tag)
        self.stack.pop()


def _assert_balanced(fragment: str) -> None:
    parser = _Balance()
    parser.feed(fragment)
    parser.close()
    assert not parser.stack, parser.stack


def test_html_section_with_histograms(skew_report: Report) -> None:
    page = html_report.render(skew_report)
    assert '<a href="#skew">Skew and composition</a>' in page
    section = _skew_html(page)
    _assert_balanced(section)
    s = skew_report.skew
    rows = re.findall(r"<tr[^>]*><td><code>(\w+)</code></td><td><svg class=\"spark\".*?</tr>", section, re.DOTALL)
    assert rows == [f["feature"] for f in s["numeric"]]
    chars = _flagged(skew_report)
    row = re.search(r'<tr class="sev-warning"><td><code>chars</code></td>.*?</tr>', section, re.DOTALL).group(0)
    hist = chars["histogram"]
    # Training as one bar per non-empty bin, production as a line of two points per bin.
    assert row.count('<rect class="train"') == sum(1 for v in hist["train"] if v)
    points = re.search(r'<polyline class="prod" points="([^"]+)"', row).group(1).split()
    assert len(points) == 2 * len(hist["prod"])
    assert f"training {hist['train'][-1]:.1%}, production {hist['prod'][-1]:.1%}</title>" in row
    assert f'data-v="{chars["distance"]}">{chars["distance"]:.3f}' in row
    assert f'data-v="{chars["critical"]}">{chars["critical"]:.3f}' in row
    assert '<span class="sev warning">flagged</span>' in row and chars["message"] in row
    d = s["domain"]
    assert f"ROC AUC <b>{d['auc']:.2f}</b> (95% interval {d['low']:.2f}–{d['high']:.2f}" in section
    for term in (*d["train_terms"], *d["prod_terms"]):
        assert f"<td>{term['term']}</td>" in section
    assert "nearest training prompt" in section and "<h3>Coverage</h3>" in section
    assert section.count('<tr class="sev-warning"><td class="num"') == sum(c["flagged"] for c in s["coverage"]["clusters"])
    for cluster in s["composition"]["clusters"]:
        assert ", ".join(cluster["terms"]) in section
    assert "<td>neutral</td>" in section


def test_html_escapes_production_prompts(skew_report: Report) -> None:
    page = html_report.render(skew_report)
    assert EVIL not in page and page.count("<script") == 1  # the page's own
    section = _skew_html(page)
    assert "&lt;script&gt;alert(1)&lt;/script&gt; zebra quantum telescope" in section
    assert "http://" not in section and "https://" not in section


def test_no_skew_no_section(family_report: Report) -> None:
    page = html_report.render(dataclasses.replace(family_report, skew=None))
    assert 'id="skew"' not in page and 'href="#skew"' not in page


def test_composition_only_renders_everywhere(composition_report: Report) -> None:
    s = composition_report.skew
    assert not s["production"] and not s["numeric"] and s["domain"] is None and s["coverage"] is None
    assert all(c["prod_share"] is None for c in s["composition"]["clusters"])
    out = text_report.render(composition_report)
    assert "skew: " not in out and f"composition of {s['training']}: {s['composition']['message']}" in out
    md = markdown.render(composition_report)
    assert "### Skew and composition" in md and "production share" not in md and "| feature |" not in md
    assert f"**Composition** of {markdown.code(s['training'], table=False)}" in md
    section = _skew_html(html_report.render(composition_report))
    _assert_balanced(section)
    assert "--production PROD.jsonl" in section and "spark" not in section and "production share" not in section
    assert "Composition of the training set" in section and "<h3>Labels</h3>" in section


def test_the_section_renders_in_chromium(browser: Any, skew_report: Report, tmp_path: Path) -> None:  # noqa: F811
    from selenium.webdriver.common.by import By

    path = tmp_path / "report.html"
    path.write_text(html_report.render(skew_report), encoding="utf-8")
    browser.get(path.as_uri())
    assert browser.find_element(By.ID, "skew").is_displayed()
    spark = browser.find_element(By.CSS_SELECTOR, "#skew svg.spark")
    assert spark.size["height"] > 20 and spark.size["width"] > 100
    severe = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert not severe, severe
