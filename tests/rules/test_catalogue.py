"""The rule catalogue, checked the way ruff checks its own: codes, names, docstrings, options,
the `sftgate rules` command, and the built-in profiles the options live in.

That every rule has a case file with a pass_ and a fail_ case is `test_cases.py`'s
`test_every_rule_has_cases`.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

import sftgate
import sftgate.rules
from sftgate._resources import builtin_profiles, data_dir, load_schema
from sftgate.rules import REGISTRY, Rule, all_rules

REPO = Path(__file__).resolve().parents[2]
CODE = re.compile(r"^[A-Z]{3,4}[0-9]{3}$")
KEBAB = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
HEADINGS = ("## What it does", "## Why is this bad?", "## Example")
KNOWN_HEADINGS = frozenset(HEADINGS) | {"## Options"}
RULES = all_rules()
PROFILES = builtin_profiles()


def _ids(rules: list[type[Rule]]) -> list[str]:
    return [rule.code for rule in rules]


def _sftgate(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sftgate", *args], capture_output=True, text=True,
                          cwd=REPO, timeout=60, check=False)


# --- codes and names -------------------------------------------------------------------------


def test_every_family_is_registered() -> None:
    # `import sftgate` must register every rule module's rules: a module its imports leave out
    # loses a family. Compared in a fresh interpreter, since importing a module here registers it.
    script = "import sftgate; from sftgate.rules import REGISTRY; print(' '.join(sorted(REGISTRY)))"
    fresh = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    defined: set[str] = set()
    for info in pkgutil.iter_modules(sftgate.rules.__path__):
        module = importlib.import_module(f"sftgate.rules.{info.name}")
        defined |= {obj.code for obj in vars(module).values()
                    if isinstance(obj, type) and issubclass(obj, Rule) and "code" in vars(obj)}
    assert {"DUP001", "FMT001", "STR001"} <= defined
    assert set(fresh.stdout.split()) == defined


def test_codes_are_unique_and_well_formed() -> None:
    codes = [rule.code for rule in RULES]
    assert len(codes) == len(set(codes))
    assert [c for c in codes if not CODE.match(c)] == []
    assert all(REGISTRY[rule.code] is rule for rule in RULES), "registry key differs from the class's code"


def test_names_are_unique_kebab_case() -> None:
    names = [rule.name for rule in RULES]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    assert duplicates == []
    assert [n for n in names if not KEBAB.match(n)] == []


@pytest.mark.parametrize("rule", RULES, ids=_ids(RULES))
def test_class_name_is_the_kebab_name(rule: type[Rule]) -> None:
    # STYLE.md: one name per rule everywhere (`consecutive-same-role` <-> `ConsecutiveSameRole`).
    assert re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "-", rule.__name__).lower() == rule.name


# --- docstrings --------------------------------------------------------------------------------


@pytest.mark.parametrize("rule", RULES, ids=_ids(RULES))
def test_docstring_has_the_headings_in_order(rule: type[Rule]) -> None:
    doc = rule.doc()
    headings = [line.strip() for line in doc.splitlines() if line.startswith("## ")]
    assert [h for h in headings if h not in KNOWN_HEADINGS] == [], "unknown heading"
    assert [h for h in headings if h in HEADINGS] == list(HEADINGS), "headings missing, repeated or out of order"
    assert doc.startswith(HEADINGS[0])
    if "## Options" in headings:
        assert headings[-1] == "## Options", "## Options comes last"
    sections = re.split(r"^## .*$", doc, flags=re.MULTILINE)[1:]
    assert all(s.strip() for s in sections), "a heading without text under it"


@pytest.mark.parametrize("rule", RULES, ids=_ids(RULES))
def test_summary_is_one_sentence_line(rule: type[Rule]) -> None:
    summary = rule.summary()
    assert summary, "empty summary"
    assert "\n" not in summary and "##" not in summary
    assert summary[0].isupper() and summary.endswith("."), summary


# --- options -----------------------------------------------------------------------------------


def _options_section(rule: type[Rule]) -> str:
    doc = rule.doc()
    return doc.split("## Options", 1)[1].split("\n## ", 1)[0] if "## Options" in doc else ""


def _schema_node(path: str) -> dict[str, Any] | None:
    """The rules.schema.json node for a dotted profile path, following `$ref`s; None if absent."""
    schema = load_schema("rules.schema.json")
    node: dict[str, Any] = schema
    for key in path.split("."):
        node = _deref(schema, node)
        props = node.get("properties", {})
        if key not in props:
            return None
        node = props[key]
    return _deref(schema, node)


def _deref(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        ref = node["$ref"]
        assert ref.startswith("#/"), f"only local $refs are expected, not {ref}"
        node = schema
        for part in ref[2:].split("/"):
            node = node[part]
    return node


def _profile_has(data: Mapping[str, Any], path: str) -> bool:
    node: Any = data
    for key in path.split("."):
        if not isinstance(node, Mapping) or key not in node:
            return False
        node = node[key]
    return True


OPTION_RULES = [rule for rule in RULES if rule.options()]


def test_some_rules_have_options() -> None:
    assert {"FMT011", "LIM001", "LIM002", "LIM003", "LIM004"} <= {r.code for r in OPTION_RULES}


@pytest.mark.parametrize("rule", RULES, ids=_ids(RULES))
def test_every_listed_option_is_parsed(rule: type[Rule]) -> None:
    # A backticked item that options() does not recognise would escape the checks below.
    listed = re.findall(r"`([^`]+)`", _options_section(rule))
    assert listed == rule.options()


@pytest.mark.parametrize("rule", OPTION_RULES, ids=_ids(OPTION_RULES))
def test_options_exist_in_the_schema_and_the_default_profile(rule: type[Rule]) -> None:
    data = sftgate.load_profile().data
    assert [o for o in rule.options() if _schema_node(o) is None] == [], "not in schemas/rules.schema.json"
    assert [o for o in rule.options() if not _profile_has(data, o)] == [], "not in the default profile"


def test_schema_walk_rejects_unknown_paths() -> None:
    assert _schema_node("media.image.mime_types") is not None
    assert _schema_node("media.image.mime_type") is None
    assert _schema_node("limits.max_file_bytes.x") is None


# --- the `sftgate rules` command -------------------------------------------------------------


def test_rules_lists_every_code() -> None:
    done = _sftgate("rules")
    assert done.returncode == 0, done.stderr
    listed = [line.split()[0] for line in done.stdout.splitlines() if line.strip()]
    assert listed == sorted(REGISTRY)
    for rule in RULES:
        line = next(line for line in done.stdout.splitlines() if line.startswith(rule.code + " "))
        assert rule.name in line and rule.summary() in line


@pytest.mark.parametrize("query", ["STR002", "str002", "consecutive-same-role"])
def test_rules_code_prints_the_doc(query: str) -> None:
    done = _sftgate("rules", query)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    rule = REGISTRY["STR002"]
    assert done.stdout.splitlines()[0] == "STR002 consecutive-same-role"
    assert rule.doc() in done.stdout
    for heading in HEADINGS:
        assert heading in done.stdout


def test_rules_unknown_code_is_a_usage_error() -> None:
    done = _sftgate("rules", "STR02")
    assert done.returncode == 2
    assert done.stdout == ""
    assert len(done.stderr.splitlines()) == 1, done.stderr
    assert "STR02" in done.stderr


def test_rules_unknown_code_suggests_the_nearest() -> None:
    done = _sftgate("rules", "STR02")
    assert "did you mean STR002?" in done.stderr


# --- built-in profiles -------------------------------------------------------------------------


def test_profiles_are_shipped() -> None:
    assert "base" in PROFILES
    assert any(p.startswith("gemini-1.5") for p in PROFILES)
    assert any(p.startswith("gemini-2.") for p in PROFILES)


def test_rules_schema_is_a_valid_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(load_schema("rules.schema.json"))


@pytest.mark.parametrize("name", PROFILES)
def test_profile_loads_and_validates(name: str) -> None:
    validator = jsonschema.Draft202012Validator(load_schema("rules.schema.json"))
    raw = yaml.safe_load((data_dir("rules") / f"{name}.yaml").read_text(encoding="utf-8"))
    assert [e.message for e in validator.iter_errors(raw)] == []
    profile = sftgate.load_profile(name)
    merged = profile.to_dict()["settings"]
    assert [e.message for e in validator.iter_errors(merged)] == []
    # Built-in profiles skip validation at run time: their rule codes must be real ones.
    codes = list(raw.get("rules", {})) + list(raw.get("select", [])) + list(raw.get("ignore", []))
    assert [c for c in codes if not any(known.startswith(c) for known in REGISTRY)] == []


@pytest.mark.parametrize("name", [p for p in PROFILES if p != "base"])
def test_profile_target_is_its_name(name: str) -> None:
    assert sftgate.load_profile(name).target == name


@pytest.mark.parametrize("name", PROFILES)
def test_profile_limits_match_the_model_generation(name: str) -> None:
    profile = sftgate.load_profile(name)
    limits = profile.limits
    if profile.target.startswith("gemini-1.5"):
        assert (limits["max_validation_examples"], limits["max_tokens_per_example"]) == (256, 32000)
    else:
        assert profile.target.startswith("gemini-2."), profile.target
        assert (limits["max_validation_examples"], limits["max_tokens_per_example"]) == (5000, 131072)
