"""Rule profiles: load YAML safely, follow `extends:`, validate, and resolve to one `Profile`.

A profile file is data. It is parsed with `yaml.safe_load`, validated against
`schemas/rules.schema.json`, and any unknown key or rule code is a `ConfigError` that names the
file, the key and the nearest valid spelling. Nothing in a rules file is executed.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from sftgate._resources import builtin_profiles, data_dir, load_schema
from sftgate.baseline import Baseline, Suppressor, check_waiver_codes, waivers
from sftgate.errors import ConfigError, UsageError
from sftgate.model import Action, Severity
from sftgate.rules import REGISTRY
from sftgate.rules.declared import CODE as DECLARED_CODE
from sftgate.rules.declared import declare
from sftgate.rules.dedup import SourcePreference

DEFAULT_PROFILE = "gemini-2.5-flash"
_SECTIONS = ("limits", "media", "format", "input", "structure", "content", "dedup", "leak", "skew", "composition",
             "tokens", "advice", "gate", "report")


@dataclass(frozen=True, slots=True)
class RuleSetting:
    severity: Severity
    action: Action
    enabled: bool


@dataclass(frozen=True)
class Profile:
    """A resolved profile: every section filled in, every rule's setting decided."""

    name: str  # the profile the user asked for (a built-in name or a file path)
    files: tuple[str, ...]  # the files merged, base first
    data: Mapping[str, Any]  # the merged mapping, as the report shows it
    rules: Mapping[str, RuleSetting]  # every registered rule code
    selected: frozenset[str]  # the codes that run
    suppress: Suppressor = Suppressor()  # the profile's waivers and the run's baseline (sftgate.baseline)

    @property
    def target(self) -> str:
        return self.data["target"]

    @property
    def limits(self) -> Mapping[str, Any]:
        return self.data["limits"]

    @property
    def media(self) -> Mapping[str, Any]:
        return self.data["media"]

    @property
    def format(self) -> Mapping[str, Any]:
        return self.data["format"]

    @property
    def structure(self) -> Mapping[str, Any]:
        return self.data["structure"]

    @property
    def dedup(self) -> Mapping[str, Any]:
        return self.data["dedup"]

    @property
    def leak(self) -> Mapping[str, Any]:
        return self.data["leak"]

    @property
    def tokens(self) -> Mapping[str, Any]:
        return self.data["tokens"]

    @property
    def advice(self) -> Mapping[str, Any]:
        return self.data["advice"]

    @property
    def fail_on(self) -> Severity:
        return Severity(self.data["gate"]["fail_on"])

    @property
    def max_error_fraction(self) -> float:
        return float(self.data["gate"]["max_error_fraction"])

    @property
    def max_findings_per_rule(self) -> int:
        return int(self.data["report"]["max_findings_per_rule"])

    @property
    def declared(self) -> tuple[Mapping[str, Any], ...]:
        """The content rules the profile declares (`content.rules`, rules.declared)."""
        return tuple(self.data.get("content", {}).get("rules", ()))

    def rule_name(self, code: str) -> str:
        rule = REGISTRY.get(code)
        if rule is not None:
            return rule.name
        spec = next((s for s in self.declared if s["code"] == code), None)
        return (spec.get("name") or f"declared-{code.lower()}") if spec is not None else code.lower()

    def severity(self, code: str) -> Severity:
        return self.rules[code].severity

    def action(self, code: str) -> Action:
        return self.rules[code].action

    def is_on(self, code: str) -> bool:
        return code in self.selected

    def __reduce__(self) -> tuple[Any, ...]:
        # Profiles travel to worker processes; mapping proxies do not pickle, plain dicts do.
        rules = {c: (s.severity.value, s.action.value, s.enabled) for c, s in self.rules.items()}
        return (_rebuild, (self.name, self.files, _plain(self.data), rules, sorted(self.selected), self.suppress))

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "target": self.target,
            "files": list(self.files),
            "settings": _plain(self.data),
            "rules": {
                code: {
                    "severity": s.severity.value,
                    "action": s.action.value,
                    "enabled": code in self.selected,
                }
                for code, s in sorted(self.rules.items())
            },
        }


def load_profile(
    profile: str | Path = DEFAULT_PROFILE,
    *,
    rules_file: str | Path | None = None,
    select: Iterable[str] | None = None,
    ignore: Iterable[str] | None = None,
) -> Profile:
    """Resolve `profile` (a built-in name or a YAML path), then the user's `rules_file` on top.

    `select` replaces the profile's `select:` list; `ignore` adds to its `ignore:` list. Both take
    rule codes or code prefixes (`DUP`, `TOK001`), as ruff does: a list, or one string of them
    separated by commas, as on the command line.
    """
    if isinstance(select, str):
        select = parse_codes(select)
    if isinstance(ignore, str):
        ignore = parse_codes(ignore)
    chain = _load_chain(str(profile), base_dir=Path.cwd(), seen=())
    if rules_file is not None:
        user = _read_file(Path(rules_file))
        if "extends" in user:
            chain = _load_chain(str(rules_file), base_dir=Path.cwd(), seen=())
        else:
            chain = chain + [(str(rules_file), user)]
    merged: dict[str, Any] = {}
    declared: dict[str, Any] = {}  # declared content rules merge by code: a later file's replaces an earlier one's
    for name, data in chain:
        merged = _merge(merged, {k: v for k, v in data.items() if k != "extends"})
        specs = (data.get("content") or {}).get("rules") or ()
        codes = [spec["code"] for spec in specs]
        if len(set(codes)) < len(codes):
            twice = next(c for c in codes if codes.count(c) > 1)
            raise ConfigError(f"{name}: /content/rules: {twice} is declared twice")
        declared.update(zip(codes, specs, strict=True))
    missing = [s for s in _SECTIONS if s not in merged]
    if missing:
        raise ConfigError(f"{chain[-1][0]}: the resolved profile has no {', '.join(missing)}: extend `base`")

    source = rules_file if rules_file is not None else profile
    _check_survivor(merged, str(source))
    if declared:
        merged["content"] = {**merged.get("content", {}), "rules": list(declared.values())}
        declare(merged["content"]["rules"], where=str(source))
    known = [*REGISTRY, *declared]
    unknown = [c for c in merged.get("rules", {}) if c not in known]
    if unknown:
        raise ConfigError(f"{source}: unknown rule code {unknown[0]!r} in /rules{_suggest(unknown[0], known)}")
    settings = _rule_settings(merged.get("rules", {}), str(source), declared)
    select_list = list(select) if select is not None else list(merged.get("select", []))
    ignored = list(merged.get("ignore", []))
    ignore_list = [c for c in ignored if isinstance(c, str)] + list(ignore or [])
    _check_codes(select_list, f"{source}: select" if select is None else "--select", known)
    _check_codes([c for c in ignored if isinstance(c, str)], f"{source}: ignore", known)
    check_waiver_codes(ignored, known, str(source))
    _check_codes(list(ignore or []), "--ignore", known)
    selected = _select(settings, select_list, ignore_list)
    return Profile(
        name=str(profile),
        files=tuple(name for name, _ in chain),
        data=_freeze(merged),
        rules=MappingProxyType(settings),
        selected=frozenset(selected),
        suppress=Suppressor(waivers=waivers(ignored)),
    )


def with_baseline(profile: Profile, baseline: Baseline | None) -> Profile:
    """`profile` whose runs also leave out the findings recorded in `baseline`."""
    return replace(profile, suppress=Suppressor(waivers=profile.suppress.waivers, baseline=baseline))


def override(profile: Profile, changes: Mapping[str, Any]) -> Profile:
    """`profile` with `changes` merged into its settings (command-line options that set a
    profile key, such as `--tokenizer`); the result is validated like a rules file."""
    data = _merge(_plain(profile.data), changes)
    _validate(data, "the command line")
    _check_survivor(data, "the command line")
    return replace(profile, data=_freeze(data))


def _load_chain(ref: str, *, base_dir: Path, seen: tuple[str, ...]) -> list[tuple[str, dict]]:
    path = _locate(ref, base_dir)
    key = str(path.resolve())
    if key in seen:
        raise ConfigError(f"{ref}: `extends` loops back to itself")
    data = _read_file(path)
    chain: list[tuple[str, dict]] = []
    if "extends" in data:
        chain = _load_chain(data["extends"], base_dir=path.parent, seen=seen + (key,))
    return chain + [(_display(path), data)]


def _locate(ref: str, base_dir: Path) -> Path:
    looks_like_path = ref.endswith((".yaml", ".yml")) or "/" in ref or "\\" in ref
    if looks_like_path:
        path = Path(ref) if Path(ref).is_absolute() else base_dir / ref
        if not path.is_file():
            raise ConfigError(f"{ref}: no such rules file")
        return path
    builtin = data_dir("rules") / f"{ref}.yaml"
    if builtin.is_file():
        return builtin
    names = builtin_profiles()
    raise ConfigError(f"unknown profile {ref!r}{_suggest(ref, names)}; profiles: {', '.join(names)}")


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(data_dir("rules").resolve().parent))
    except ValueError:
        return str(path)


def _read_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such rules file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read ({exc})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{path}{where}: invalid YAML ({problem})") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a rules file is a mapping of keys, not {type(data).__name__}")
    # The shipped profiles are validated by the test suite; validating them again on every run
    # would cost the import of jsonschema (0.13 s) for nothing. User files are always checked.
    if path.resolve().parent != data_dir("rules").resolve():
        _validate(data, str(path))
    for spec in (data.get("content") or {}).get("rules") or ():
        if spec.get("schema"):  # a declared rule's JSON Schema file is relative to the rules file
            spec["schema"] = str((path.parent / spec["schema"]).resolve())
    return data


def _validate(data: dict[str, Any], name: str) -> None:
    import jsonschema

    if isinstance(data.get("rules"), dict):  # before the schema, to suggest the nearest code
        _check_rule_codes(data["rules"], name)
    schema = load_schema("rules.schema.json")
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(data), key=lambda e: [str(p) for p in e.absolute_path])
    if not errors:
        return
    error = errors[0]
    where = "/" + "/".join(str(p) for p in error.absolute_path)
    if error.validator == "additionalProperties":
        allowed = list(error.schema.get("properties", {}))
        unknown = [k for k in error.instance if k not in allowed]
        key = unknown[0]
        at = "at the top level" if where == "/" else f"in {where}"
        raise ConfigError(f"{name}: unknown key {key!r} {at}{_suggest(key, allowed)}")
    raise ConfigError(f"{name}: {where}: {error.message}")


def _check_survivor(data: Mapping[str, Any], name: str) -> None:
    """The survivor policy `source` needs a field and preferred values (the schema checks their types)."""
    try:
        SourcePreference.from_profile(data["dedup"])
    except ValueError as exc:
        raise ConfigError(f"{name}: {exc}") from None


def _check_rule_codes(rules: Mapping[str, Any], name: str) -> None:
    for code in rules:  # declared codes (CNT100-999) are checked once the profile is merged
        if code not in REGISTRY and not DECLARED_CODE.match(code):
            raise ConfigError(f"{name}: unknown rule code {code!r} in /rules{_suggest(code, list(REGISTRY))}")


def _check_codes(codes: list[str], where: str, known: list[str]) -> None:
    for code in codes:
        if not any(k.startswith(code) for k in known):
            raise ConfigError(f"{where}: no rule code starts with {code!r}{_suggest(code, known)}")


def _suggest(word: str, choices: list[str]) -> str:
    return f"; did you mean {match!r}?" if (match := nearest(word, choices)) else ""


def nearest(word: str, choices: list[str]) -> str | None:
    """The closest spelling among `choices`; a rule code missing a digit (STR02) gets STR002."""
    code = re.fullmatch(r"([A-Za-z]+)([0-9]{1,3})", word)
    if code is not None:
        padded = code[1].upper() + code[2].zfill(3)
        if padded in choices:
            return padded
    match = difflib.get_close_matches(word, choices, n=1, cutoff=0.5)
    return match[0] if match else None


def _rule_settings(overrides: Mapping[str, Any], name: str,
                   declared: Mapping[str, Mapping[str, Any]]) -> dict[str, RuleSetting]:
    settings = {}
    for code, spec in declared.items():
        over = overrides.get(code, {})
        action = Action(over.get("action", spec.get("action", "flag")))
        if action is Action.FIX:
            raise ConfigError(f"{name}: /rules/{code}/action: a declared rule cannot fix a record; "
                              f"its action can be flag or drop")
        settings[code] = RuleSetting(severity=Severity(over.get("severity", spec.get("severity", "warning"))),
                                     action=action, enabled=bool(over.get("enabled", True)))
    for code, rule in REGISTRY.items():
        over = overrides.get(code, {})
        action = Action(over.get("action", rule.default_action.value))
        if action is Action.FIX and not rule.fixes:
            raise ConfigError(f"{name}: /rules/{code}/action: {code} ({rule.name}) cannot fix a record; "
                              f"its action can be flag or drop")
        settings[code] = RuleSetting(
            severity=Severity(over.get("severity", rule.default_severity.value)),
            action=action,
            enabled=bool(over.get("enabled", getattr(rule, "enabled_by_default", True))),
        )
    return settings


def _select(settings: Mapping[str, RuleSetting], select: list[str], ignore: list[str]) -> set[str]:
    chosen = set()
    for code, setting in settings.items():
        named = code in select
        picked = named or (setting.enabled and (not select or any(code.startswith(s) for s in select)))
        if picked and not any(code.startswith(i) for i in ignore):
            chosen.add(code)
    return chosen


def _merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """Deep-merge mappings; anything else (lists included) in `over` replaces the base value."""
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merge(dict(out[key]), value)
        else:
            out[key] = value
    return out


def _freeze(value: Any) -> Any:
    if isinstance(value, Mapping):
        return MappingProxyType({k: _freeze(v) for k, v in value.items()})
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    return value


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


def parse_codes(text: str | None) -> list[str] | None:
    """`--select DUP,TOK001` -> ["DUP", "TOK001"]; raises UsageError on an empty item."""
    if text is None:
        return None
    items = [c.strip().upper() for c in text.split(",")]
    if any(not c for c in items):
        raise UsageError(f"empty rule code in {text!r}")
    return items


def _rebuild(name: str, files: tuple[str, ...], data: dict[str, Any],
             rules: dict[str, tuple[str, str, bool]], selected: list[str], suppress: Suppressor) -> Profile:
    return Profile(
        name=name,
        files=files,
        data=_freeze(data),
        rules=MappingProxyType({c: RuleSetting(Severity(s), Action(a), e) for c, (s, a, e) in rules.items()}),
        selected=frozenset(selected),
        suppress=suppress,
    )

