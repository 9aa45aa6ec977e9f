"""The HTML report: one self-contained page, read as text and in a real (headless) browser."""

from __future__ import annotations

import copy
import dataclasses
import html
import re
import shutil
import time
from pathlib import Path
from typing import Any

import pytest

from sftgate.model import Finding, Severity
from sftgate.report import html as html_report
from sftgate.report.model import Report

SECTIONS = ("verdict", "inputs", "rules", "tokens", "cost", "duplicates", "leakage", "findings")
FIVE_MB = 5 * 1024 * 1024


@pytest.fixture(scope="module")
def page(family_report: Report) -> str:
    return html_report.render(family_report)


def section(page: str, sid: str) -> str:
    """The HTML of one <section> of the page."""
    match = re.search(rf'<section id="{sid}"[^>]*>(.*?)</section>', page, re.DOTALL)
    assert match, f"no #{sid} section"
    return match.group(1)


def text_of(fragment: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", fragment))


def table_rows(page: str) -> list[str]:
    return re.findall(r'<tr class="sev-\w+" data-code="[^"]+"[^>]*>.*?</tr>', section(page, "findings"), re.DOTALL)


# --- sections and numbers ------------------------------------------------------------------------

def test_every_section_is_there_with_an_id(page: str, family_report: Report) -> None:
    for sid in SECTIONS:
        assert f'<section id="{sid}"' in page
        assert f'<a href="#{sid}">' in page  # the navigation links to it
    # Sections the report has no data for are left out.
    assert family_report.split is None and family_report.media is None and family_report.suppressed is None
    for sid in ("split", "media", "suppressed"):
        assert f'id="{sid}"' not in page


def test_verdict_states_the_gate(page: str, family_report: Report) -> None:
    gate = family_report.gate
    verdict = text_of(section(page, "verdict"))
    assert not gate.passed and "FAILED" in verdict and "PASSED" not in verdict
    assert gate.reason in verdict
    assert f"{gate.failing_lines:,} / {gate.lines:,}" in verdict
    assert "fail_on error" in verdict
    counts = family_report.severity_counts
    assert f"{family_report.total_findings:,}findings" in verdict
    assert f"{counts['error']:,}errors" in verdict and f"{counts['warning']:,}warnings" in verdict
    # The failing lines are named: the STR002 record among them.
    assert "train.jsonl:65" in verdict
    assert "<title>FAILED: sftgate report for gemini-2.5-flash</title>" in page


def test_inputs_and_rules_carry_the_counts(page: str, family_report: Report) -> None:
    inputs = section(page, "inputs")
    for summary in family_report.inputs:
        assert Path(summary.path).name in inputs
        assert f'data-v="{summary.lines}"' in inputs
        assert f'data-v="{summary.accounting.get("valid", 0)}"' in inputs
    rules = section(page, "rules")
    for rule in family_report.rules:
        row = re.search(rf'<tr class="sev-\w+"><td><a href="#findings" data-rule="{rule.code}">.*?</tr>', rules,
                        re.DOTALL)
        assert row, rule.code
        assert rule.name in row.group(0) and f'data-v="{rule.count}"' in row.group(0)
    assert f"{family_report.total_findings:,} findings from {len(family_report.rules)} rules" in text_of(rules)


def test_every_finding_is_a_row(page: str, family_report: Report) -> None:
    rows = table_rows(page)
    assert len(rows) == len(family_report.findings) == family_report.total_findings
    by_code = {r.code: r.listed for r in family_report.rules}
    for code, listed in by_code.items():
        assert sum(f'data-code="{code}"' in row for row in rows) == listed
    str002 = next(row for row in rows if 'data-code="STR002"' in row)
    assert "train.jsonl:65:/contents/2" in str002 and "user and model turns must alternate" in str002
    assert 'data-sev="error"' in str002
    dup = next(row for row in rows if 'data-code="DUP001"' in row)
    assert "train.jsonl:1" in dup  # related
    # The filter controls exist but stay hidden until the script shows them.
    assert '<div class="filters" id="findings-filters" hidden>' in page
    assert all(f'<option value="{code}">' in page for code in by_code)


def test_tokens_draw_histograms_with_the_limit(page: str, family_report: Report) -> None:
    tokens = section(page, "tokens")
    limit = family_report.tokens["limit"]
    splits = family_report.tokens["splits"]
    assert tokens.count("<svg class=\"chart\"") == 3 * len(splits)
    assert tokens.count(f"limit {limit:,}</text>") == 3 * len(splits)
    assert tokens.count('<line class="limit"') == 3 * len(splits)
    train = splits[0]
    # Each bucket with examples is a bar whose tooltip gives its count.
    for b in train["example_tokens"]["histogram"]:
        if b["count"]:
            assert f"{b['from']:,}–{b['to'] - 1:,} tokens: {b['count']:,}</title>" in tokens
    assert f"{train['examples']:,} examples, {train['records']:,} training records" in text_of(tokens)
    cost = text_of(section(page, "cost"))
    billing = family_report.tokens["billing"]
    assert f"{billing['training_billable_tokens']['value']:,}" in cost
    for row in billing["epochs"]:
        assert f"{row['tokens']:,}" in cost
    for advice in family_report.tokens["advice"]:
        assert advice["setting"] in cost and advice["advice"] in cost
    assert "--price-per-million" in cost


def test_near_duplicate_diff_marks_inserted_and_deleted_words(page: str, family_report: Report) -> None:
    dups = section(page, "duplicates")
    cluster = next(c for d in family_report.duplicates for c in d["listed_clusters"]
                   if c["members"][0]["code"] == "DUP002")
    survivor, member = cluster["survivor"], cluster["members"][0]["record"]
    old, new = family_report.examples[survivor].split(), family_report.examples[member].split()
    name = f"{Path(member).name}</code> against <code>{Path(survivor).name}</code>"
    block = re.search(rf"<details open><summary>DUP002: <code>{re.escape(name)}.*?</details>", dups, re.DOTALL)
    assert block, "no side-by-side diff of the DUP002 cluster"
    left, right = re.findall(r'<pre class="text">(.*?)</pre>', block.group(0), re.DOTALL)
    assert "<ins>" not in left and "<del>" not in right
    assert text_of(left).split() == old and text_of(right).split() == new  # the whole texts, escaped
    deleted = " ".join(text_of(t) for t in re.findall(r"<del>(.*?)</del>", left, re.DOTALL)).split()
    inserted = " ".join(text_of(t) for t in re.findall(r"<ins>(.*?)</ins>", right, re.DOTALL)).split()
    assert deleted and inserted
    assert set(deleted) & (set(old) - set(new))  # words only the survivor has are struck
    assert set(inserted) & (set(new) - set(old))  # words only the member has are marked
    assert set(inserted) <= set(new) and set(deleted) <= set(old)
    # Exact duplicates are listed with their text, folded.
    assert re.search(r"<details><summary>DUP001: .*?identical text\)</summary>", dups)


def test_leakage_lists_pairs_side_by_side(page: str, family_report: Report) -> None:
    leakage = section(page, "leakage")
    for s in family_report.leakage["sets"]:
        assert f"{s['leaking_records']:,} / {s['records']:,}" in text_of(leakage)
        for item in s["listed"]:
            assert Path(item["record"]).name in leakage  # path:line, without the inputs' directory
    span = next(m for s in family_report.leakage["sets"] for item in s["listed"] for m in item["matches"]
                if m["code"] == "LEAK003")
    assert f"shared span of {span['span_tokens']} tokens: <mark>" in leakage
    assert leakage.count('<div class="pair">') == sum(len(s["listed"]) for s in family_report.leakage["sets"])


def test_optional_sections(family_report: Report) -> None:
    split = {"requested": 0.1, "requested_examples": 7, "target_examples": 7, "capped_by": None, "seed": 7,
             "stratify_by": "cluster", "records": 67, "train_examples": 60, "validation_examples": 7, "groups": 61,
             "groups_kept_whole": 4, "largest_group": 3,
             "leak_check": {"clean": True, "rounds": 2, "moved_back": 1, "last_round": {"exact": 0}},
             "validation_lines": [3, 9, 14, 22, 30, 41, 50]}
    media = {"references": 12, "uris": 10, "checked": 8, "found": 6, "missing": 2, "too_large": 1, "unreadable": 0,
             "unreadable_buckets": [], "not_verified": 2, "other_schemes": 0,
             "by_modality": {"image": {"objects": 6, "bytes": 3 << 20, "largest": 1 << 20}}}
    suppressed = {"findings": 4, "by_code": {"DUP003": 3, "LIM004": 1},
                  "waivers": {"entries": [{"code": "DUP003", "source": "train.jsonl", "lines": [2, 5],
                                           "reason": "the <same> prompt on purpose"}],
                              "findings": 3, "by_code": {"DUP003": 3}},
                  "baseline": {"file": "baseline.json", "entries": 1, "findings": 1, "by_code": {"LIM004": 1}}}
    out = html_report.render(dataclasses.replace(family_report, split=split, media=media, suppressed=suppressed))
    s = text_of(section(out, "split"))
    assert "60train examples" in s and "7validation examples" in s and "clean" in s and "1 moved back" in s
    m = text_of(section(out, "media"))
    assert "2missing" in m and "1too large" in m and "3.0 MiB" in m
    sup = section(out, "suppressed")
    assert "4 findings left out" in text_of(sup) and "baseline.json" in sup
    assert "the &lt;same&gt; prompt on purpose" in sup


def test_tokens_sampled_empty_and_priced(family_report: Report) -> None:
    tokens = copy.deepcopy(family_report.tokens)
    empty = {"count": 0, "sum": 0, "min": None, "p5": None, "p50": None, "p95": None, "max": None, "mean": None,
             "histogram": []}
    train, validation = tokens["splits"]
    train.update(mode="sampled", sample={"examples": 50, "rate": 0.75, "seed": 0},
                 billable_tokens=dict(train["billable_tokens"], exact=False, low=27_000, high=30_500))
    validation.update(examples=0, records=0, input_tokens=empty, output_tokens=empty, example_tokens=empty)
    billing = tokens["billing"]
    billing["price_per_million"] = 2.0
    billing["training_billable_tokens"] = train["billable_tokens"]
    for row in billing["epochs"]:
        row["cost"] = row["tokens"] / 1e6 * 2
    out = html_report.render(dataclasses.replace(family_report, tokens=tokens))
    t, cost = text_of(section(out, "tokens")), text_of(section(out, "cost"))
    assert "distributions from 50 sampled examples" in t
    assert "no examples" in t and "p50 — · p95 — · max — · mean —" in t
    assert f"about {train['billable_tokens']['value']:,} (27,000–30,500 at 95%)" in cost
    assert f"{billing['epochs'][-1]['cost']:,.2f}" in cost and "--price-per-million" not in cost


def test_a_clean_report(family_report: Report) -> None:
    gate = dataclasses.replace(family_report.gate, passed=True, failing_lines=0,
                               reason="0 of 79 lines have findings at error or above")
    inputs = [dataclasses.replace(family_report.inputs[0], path="/data/sft/train.jsonl"),
              dataclasses.replace(family_report.inputs[1], path="/data/held/validation.jsonl")]
    report = dataclasses.replace(family_report, findings=[], rules=[], severity_counts={}, duplicates=[],
                                 leakage=None, tokens=None, examples={}, gate=gate, inputs=inputs)
    out = html_report.render(report)
    assert "PASSED" in text_of(section(out, "verdict")) and "FAILED" not in out
    assert '<section id="verdict" class="passed">' in out
    assert "files in <code>/data/</code>" in out  # the inputs' common directory, shown once
    assert ">sft/train.jsonl<" in section(out, "inputs") and ">held/validation.jsonl<" in section(out, "inputs")
    assert "No rule found anything." in out and "No findings." in out
    assert "no token statistics" in section(out, "tokens") and 'id="cost"' not in out
    assert "did not run" in section(out, "duplicates")
    assert "No validation or eval set was compared" in section(out, "leakage")


# --- safety: escaping, no network, size, determinism ---------------------------------------------

def test_everything_is_escaped(family_report: Report) -> None:
    evil = "<script>alert(1)</script>"
    first = family_report.findings[0]
    findings = [dataclasses.replace(first, message=f"bad {evil}", hint='"><img src=x onerror=alert(2)>',
                                    related=f"x.jsonl:1{evil}"), *family_report.findings[1:]]
    key = next(iter(family_report.examples))
    examples = {**family_report.examples, key: family_report.examples[key] + evil}
    report = dataclasses.replace(family_report, findings=findings, examples=examples,
                                 gate=dataclasses.replace(family_report.gate, reason=evil))
    out = html_report.render(report)
    assert evil not in out and "<img" not in out
    assert out.count("<script") == 1  # the page's own
    assert "bad &lt;script&gt;alert(1)&lt;/script&gt;" in out
    assert "&quot;&gt;&lt;img src=x onerror=alert(2)&gt;" in out
    assert out.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 3  # message, related, gate reason, example text


def test_no_resource_is_loaded_from_anywhere(page: str) -> None:
    assert '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; ' in page
    assert "<link" not in page.lower()
    assert not re.search(r"\s(src|href|srcset|data|poster|action)\s*=\s*[\"']?(https?:|//)", page, re.IGNORECASE)
    assert not re.search(r"\ssrc\s*=", page, re.IGNORECASE)  # no image, frame or script file at all
    assert "@import" not in page and "url(" not in page
    assert "http://" not in page and "https://" not in page
    assert "<iframe" not in page and "<img" not in page and "<object" not in page


def test_same_report_same_bytes(page: str, family_report: Report) -> None:
    assert html_report.render(family_report) == page
    assert html_report.render(dataclasses.replace(family_report)) == page
    # A report saved as JSON and loaded again renders the same page.
    again = Report.from_dict(family_report.to_dict())
    assert html_report.render(dataclasses.replace(again, duration_s=family_report.duration_s)) == page


def test_a_huge_report_stays_small_and_says_rows_were_cut(family_report: Report) -> None:
    long = "a message that goes on and on <with> \"markup\" & more " * 40
    base = family_report.findings
    findings = [dataclasses.replace(base[i % len(base)], line=i + 1, message=long + str(i))
                for i in range(200_000)]
    findings.append(Finding("FMT009", Severity.ERROR, "NUL byte at column 3", base[0].source, 7, column=3))
    counts: dict[str, int] = {}
    for f in findings:
        counts[f.code] = counts.get(f.code, 0) + 1
    rules = [dataclasses.replace(r, count=counts[r.code], listed=counts[r.code]) for r in family_report.rules]
    rules.append(dataclasses.replace(family_report.rules[0], code="FMT009", name="nul-byte",
                                     severity=Severity.ERROR, count=1, listed=1))
    dup = family_report.duplicates[0]
    cluster = dup["listed_clusters"][0]
    clusters = [dict(cluster, members=cluster["members"] * 500) for _ in range(5_000)]
    leak = family_report.leakage
    sets = [dict(s, listed=s["listed"] * 5_000, leaking_records=5_000) for s in leak["sets"]]
    examples = {k: v * 100 for k, v in family_report.examples.items()}
    report = dataclasses.replace(
        family_report, findings=findings, rules=rules, examples=examples,
        duplicates=[dict(dup, listed_clusters=clusters, clusters=5_000, conflicts=dup["conflicts"] * 1_000,
                         conflict_groups=15_000), *family_report.duplicates[1:]],
        leakage=dict(leak, sets=sets))
    started = time.perf_counter()
    out = html_report.render(report)
    assert time.perf_counter() - started < 10
    assert len(out.encode("utf-8")) < FIVE_MB
    rows = table_rows(out)
    assert 0 < len(rows) <= html_report.MAX_FINDING_ROWS
    assert f"Showing {len(rows):,} of {len(findings):,} listed findings: rows were cut" in out
    assert f"{sum(counts.values()):,} findings from {len(rules)} rules" in text_of(section(out, "rules"))
    # Round-robin: every rule keeps rows, the one-finding rule included.
    for code in counts:
        assert any(f'data-code="{code}"' in row for row in rows), code
    assert f"Showing {html_report.MAX_CLUSTERS} of 5,000 clusters" in out
    assert out.count(f"Showing {html_report.MAX_LEAKS} of 5,000 leaking records") == len(sets)
    assert out.count('<div class="pair">') <= 2 * html_report.MAX_PAIRS


# --- in a real browser ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def browser() -> Any:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver")
    if chromium is None or driver_path is None:
        pytest.skip("the browser test needs chromium and chromedriver on PATH (Debian: apt-get install chromium "
                    "chromium-driver)")
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1280,2000"):
        options.add_argument(arg)
    options.binary_location = chromium  # with the driver's path below, Selenium Manager never runs
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    driver.set_page_load_timeout(15)
    yield driver
    driver.quit()


def test_the_page_works_in_chromium(browser: Any, page: str, family_report: Report, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    path = tmp_path / "report.html"
    path.write_text(page, encoding="utf-8")
    browser.get(path.as_uri())
    assert browser.title.startswith("FAILED")
    for sid in SECTIONS:
        assert browser.find_element(By.ID, sid).is_displayed(), sid
    verdict = browser.find_element(By.ID, "verdict").text
    assert "FAILED" in verdict and family_report.gate.reason in verdict
    assert f"{family_report.total_findings:,}" in verdict
    assert "limit 131,072" in browser.find_element(By.ID, "tokens").text
    assert browser.find_element(By.CSS_SELECTOR, "#tokens svg.chart").size["height"] > 50

    # The script shows the filters; choosing a rule leaves its rows.
    assert browser.find_element(By.ID, "findings-filters").is_displayed()
    rows = browser.find_elements(By.CSS_SELECTOR, "#findings-table tbody tr")
    assert len(rows) == len(family_report.findings)
    listed = {r.code: r.listed for r in family_report.rules}
    Select(browser.find_element(By.ID, "filter-rule")).select_by_value("DUP002")
    visible = [r for r in rows if r.is_displayed()]
    assert len(visible) == listed["DUP002"]
    assert all(r.get_attribute("data-code") == "DUP002" for r in visible)
    assert browser.find_element(By.ID, "filter-count").text == f"{listed['DUP002']} of {len(rows)} rows"

    Select(browser.find_element(By.ID, "filter-rule")).select_by_value("")
    Select(browser.find_element(By.ID, "filter-severity")).select_by_value("error")
    errors = sum(r.listed for r in family_report.rules if r.severity is Severity.ERROR)
    assert sum(r.is_displayed() for r in rows) == errors
    Select(browser.find_element(By.ID, "filter-severity")).select_by_value("")
    browser.find_element(By.ID, "filter-text").send_keys("twice in a row")
    assert [r.get_attribute("data-code") for r in rows if r.is_displayed()] == ["STR002"]

    # A rule's code in the rules table filters the findings to it.
    browser.find_element(By.ID, "filter-text").clear()
    browser.find_element(By.CSS_SELECTOR, '#rules a[data-rule="LEAK001"]').click()
    assert sum(r.is_displayed() for r in rows) == listed["LEAK001"]

    # Sorting: the rules table by findings, most first on the second click.
    header = browser.find_elements(By.CSS_SELECTOR, "#rules thead th")[4]
    header.click()
    header.click()
    first = browser.find_element(By.CSS_SELECTOR, "#rules tbody tr td a").text
    assert first == max(family_report.rules, key=lambda r: r.count).code

    severe = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert not severe, severe

    # A phone: nothing wider than the screen but the tables' own scrolling boxes.
    browser.set_window_size(390, 844)
    overflow = browser.execute_script("return document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0
