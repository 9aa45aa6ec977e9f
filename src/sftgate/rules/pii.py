"""PII and secrets (PII rules): personal data and credentials in the texts of an example.

Every rule reads the same texts: each text part of the system instruction and of every turn
(prompts and responses alike), and the string values inside `functionCall.args` and
`functionResponse.response` (a tool's answer is where customer records turn up). The detectors
are `analysis/pii.py`'s; one scan per example serves all six rules: the example's texts are
first searched as one string, and only an example with a hit is searched part by part.

A finding is one (part, kind): its pointer is the part's, its message names the kind, how many
were found and a masked preview of the first (never the value itself). With the action `fix`,
`prepare` replaces each value with a typed placeholder (`[EMAIL]`) in every text the rules
read, so that redacted shards can ship.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, ClassVar

from sftgate.analysis import pii
from sftgate.model import Action, Example, Finding, PartKind, Severity
from sftgate.rules.base import RecordRule, RuleContext

# (pointer, where, the strings the part holds)
_Texts = list[tuple[str, str, list[str]]]


def _strings(value: Any, out: list[str]) -> list[str]:
    """The strings in a JSON value, in document order (a walk with a stack, not recursion)."""
    stack = [value]
    while stack:
        value = stack.pop()
        if isinstance(value, str):
            out.append(value)
        elif isinstance(value, dict):
            stack.extend(reversed(value.values()))
        elif isinstance(value, list):
            stack.extend(reversed(value))
    return out


def _texts(example: Example) -> _Texts:
    out: _Texts = []
    for i, part in enumerate(example.system):
        if part.kind is PartKind.TEXT:
            out.append((f"/{example.system_key}/parts/{i}", f"system instruction part {i + 1}", [part.value]))
    for turn in example.turns:
        for i, part in enumerate(turn.parts):
            kind = part.kind
            if kind is PartKind.TEXT:
                strings = [part.value]
            elif kind is PartKind.FUNCTION_CALL and isinstance(part.value, dict):
                strings = _strings(part.value.get("args"), [])
            elif kind is PartKind.FUNCTION_RESPONSE and isinstance(part.value, dict):
                strings = _strings(part.value.get("response"), [])
            else:
                continue
            out.append((f"{turn.pointer}/parts/{i}", f"turn {turn.index + 1} part {i + 1}", strings))
    return out


def _options(ctx: RuleContext) -> pii.Options:
    """The profile's `pii` settings, converted once per profile (workers check many records
    with one profile)."""
    global _last_options
    profile = ctx.profile
    if _last_options[0] is not profile:
        data = profile.data.get("pii") or {}
        _last_options = (profile, pii.Options(
            allow_domains=frozenset(d.lower().lstrip("@") for d in data.get("allow_domains", ())),
            min_entropy=float(data.get("generic_secret_min_entropy", pii.DEFAULT_MIN_ENTROPY))))
    return _last_options[1]


_last_options: tuple[Any, pii.Options] = (None, pii.DEFAULTS)
# The last example scanned and what was found in it, per part: the six rules run one after
# another on the same example, so the scan is done once. (Held by identity; an example is
# immutable.)
_last_scan: tuple[Any, Any, list[tuple[str, str, list[tuple[str, pii.Match]]]]] = (None, None, [])


def scan(example: Example, options: pii.Options) -> list[tuple[str, str, list[tuple[str, pii.Match]]]]:
    """(pointer, where, [(text, match), ...]) for each part of `example` with a hit."""
    global _last_scan
    if _last_scan[0] is example and _last_scan[1] is options:
        return _last_scan[2]
    texts = _texts(example)
    hits: list[tuple[str, str, list[tuple[str, pii.Match]]]] = []
    # One search over everything first: most examples hold nothing, and one call over the
    # joined texts costs less than one per part.
    if texts and pii.find("\n".join(s for _, _, strings in texts for s in strings), options=options):
        for pointer, where, strings in texts:
            found = [(s, m) for s in strings for m in pii.find(s, options=options)]
            if found:
                hits.append((pointer, where, found))
    _last_scan = (example, options, hits)
    return hits


def redact_record(obj: dict[str, Any], kinds: frozenset[str], options: pii.Options) -> bool:
    """Replace the values of `kinds` with their placeholders in every text of a parsed record
    that the rules read (in place), found as the check finds them (`options`). True: records
    are always fixable."""

    def clean(text: str) -> str:
        matches = [m for m in pii.find(text, options=options) if m.kind in kinds]
        return pii.redact(text, matches) if matches else text

    def walk(value: Any) -> Any:
        if isinstance(value, str):
            return clean(value)
        if isinstance(value, dict):
            for key, v in value.items():
                value[key] = walk(v)
        elif isinstance(value, list):
            for i, v in enumerate(value):
                value[i] = walk(v)
        return value

    system = obj.get("systemInstruction", obj.get("system_instruction"))
    parts = list(system.get("parts") or ()) if isinstance(system, dict) else []
    for turn in obj.get("contents") or ():
        if isinstance(turn, dict):
            parts.extend(turn.get("parts") or ())
    for part in parts:
        if not isinstance(part, dict):
            continue
        if isinstance(part.get("text"), str):
            part["text"] = clean(part["text"])
        for key, inner in (("functionCall", "args"), ("functionResponse", "response")):
            data = part.get(key)
            if isinstance(data, dict) and inner in data:
                data[inner] = walk(data[inner])
    return True


class _PiiRule(RecordRule):
    kinds: ClassVar[frozenset[str]]
    hint: ClassVar[str]
    fixes = "record"

    def fix(self, obj: dict[str, Any], ctx: RuleContext) -> bool:
        return redact_record(obj, self.kinds, _options(ctx))

    def check(self, example: Example, ctx: RuleContext) -> Iterable[Finding]:
        hits = scan(example, _options(ctx))
        if not hits:
            return ()  # the common case, without the cost of a generator
        return self._findings(example, hits)

    def _findings(self, example: Example, hits: list[tuple[str, str, list[tuple[str, pii.Match]]]]) -> Iterator[Finding]:
        for pointer, where, found in hits:
            by_kind: dict[str, list[str]] = {}
            for text, m in found:
                if m.kind in self.kinds:
                    by_kind.setdefault(m.kind, []).append(text[m.start:m.end])
            for kind, values in by_kind.items():
                label = pii.LABELS[kind]
                if len(values) > 1:
                    count = f"{len(values)} {label}{'es' if label.endswith('s') else 's'}"
                else:
                    count = f"{'an' if label[0] in 'AEIOUaeiou' else 'a'} {label}"
                yield self.at(example, f"{where} holds {count} ({pii.mask(kind, values[0])})", pointer=pointer,
                              hint=self.hint)


class EmailAddress(_PiiRule):
    """## What it does
    Flags email addresses in the texts of an example: the system instruction, every turn's text
    parts, and the strings in function call arguments and function responses.

    ## Why is this bad?
    An email address identifies a person. A model tuned on it can repeat it to anyone, and the
    dataset itself becomes personal data to protect. Addresses at domains reserved for
    documentation (`example.com`, `.example`, `.test`, `.invalid`, `.localhost`; RFC 2606) are
    not reported, nor those at `pii.allow_domains` (a company's own support address).

    ## Example
    `"text": "Write to jane.doe@gmail.com for a refund."`.
    Use instead: a placeholder or a documentation address (`jane@example.com`). With the action
    `fix`, `prepare` writes `"Write to [EMAIL] for a refund."` (addresses at `pii.allow_domains`
    are kept).

    ## Options
    - `pii.allow_domains`
    """

    code = "PII001"
    name = "email-address"
    default_severity = Severity.WARNING
    default_action = Action.FLAG
    kinds = frozenset({"email"})
    hint = "replace it with a placeholder (action fix writes [EMAIL])"


class PhoneNumber(_PiiRule):
    """## What it does
    Flags phone numbers: international numbers written with `+` and a country code
    (`+44 20 7946 0958`), and North American numbers with separators (`(415) 867-5309`,
    `1-800-273-8255`).

    ## Why is this bad?
    A phone number identifies a person or reaches them; a tuned model can repeat it. The
    detector is conservative: a plain run of digits, a date, an ISBN, a national number without
    its country code and the fictional 555 exchange are not reported.

    ## Example
    `"text": "My number is 713-786-0234."`.
    Use instead: a placeholder. With the action `fix`, `prepare` writes `"My number is [PHONE]."`.
    """

    code = "PII002"
    name = "phone-number"
    default_severity = Severity.WARNING
    default_action = Action.FLAG
    kinds = frozenset({"phone"})
    hint = "replace it with a placeholder (action fix writes [PHONE])"


class CreditCardNumber(_PiiRule):
    """## What it does
    Flags payment card numbers: 13 to 19 digits, whole or in the usual groups, with a known
    issuer prefix (Visa, Mastercard, American Express, Discover, Diners, JCB, UnionPay, Maestro)
    and a valid Luhn check digit.

    ## Why is this bad?
    A card number in training data is a payment credential a model can learn and repeat, and
    it puts the dataset under PCI DSS. The issuers' published test numbers
    (`4111 1111 1111 1111`) are not reported; a number whose check digit fails is not a card.

    ## Example
    `"text": "Charge 4556 7375 8689 9855 please."`.
    Use instead: a placeholder. With the action `fix`, `prepare` writes
    `"Charge [CREDIT_CARD] please."`.
    """

    code = "PII003"
    name = "credit-card-number"
    default_severity = Severity.WARNING
    default_action = Action.FLAG
    kinds = frozenset({"credit_card"})
    hint = "replace it with a placeholder (action fix writes [CREDIT_CARD])"


class Iban(_PiiRule):
    """## What it does
    Flags International Bank Account Numbers (IBANs): a country code, two check digits and the
    account number, compact or in groups of four, with the country's length and valid check
    digits (ISO 13616, mod 97).

    ## Why is this bad?
    An IBAN identifies a person's bank account. A code with the wrong length for its country or
    a wrong checksum is not reported.

    ## Example
    `"text": "Pay to DE89 3704 0044 0532 0130 00."`.
    Use instead: a placeholder. With the action `fix`, `prepare` writes `"Pay to [IBAN]."`.
    """

    code = "PII004"
    name = "iban"
    default_severity = Severity.WARNING
    default_action = Action.FLAG
    kinds = frozenset({"iban"})
    hint = "replace it with a placeholder (action fix writes [IBAN])"


class IpAddress(_PiiRule):
    """## What it does
    Flags public IPv4 and IPv6 addresses.

    ## Why is this bad?
    A public address can identify a person's connection or an organisation's server. Private,
    loopback, link-local and documentation addresses (`192.168.1.1`, `127.0.0.1`,
    `203.0.113.7`, `2001:db8::1`) identify no one and are not reported, nor dotted numbers
    that are versions or section numbers: after "version", "v", "git" and the like, or with
    every part below 32 (`1.7.7.3`, `§15.12.2.7`, the placeholder `1.2.3.4`).

    ## Example
    `"text": "Our API server is at 52.14.160.9."`.
    Use instead: a documentation address (`203.0.113.7`). With the action `fix`, `prepare`
    writes `"Our API server is at [IP_ADDRESS]."`.
    """

    code = "PII005"
    name = "ip-address"
    default_severity = Severity.WARNING
    default_action = Action.FLAG
    kinds = frozenset({"ip_address"})
    hint = "replace it with a documentation address (203.0.113.0/24) or a placeholder"


class ExposedSecret(_PiiRule):
    """## What it does
    Flags credentials: AWS access key ids and secret access keys, private keys (PEM blocks,
    such as a GCP service-account key's `private_key`), GitHub, Slack, Google API and OpenAI
    tokens, and generic secrets: a value of 20 or more characters assigned to a name containing
    key, token, secret or password (`api_key = "..."`) that has letters and digits and a Shannon
    entropy of at least `pii.generic_secret_min_entropy` bits per character.

    ## Why is this bad?
    A credential must never ship: a model tuned on it can print it to anyone, and the dataset
    leaks it to everyone who reads it. Revoke the key; removing it from the data is not enough.
    Documented example keys (AWS's `...EXAMPLE`) and placeholders (`"your-api-key-here"`,
    `xxxx`) are not reported.

    ## Example
    `"text": "client = WebClient(token=\"xoxb-1234567890-...\")"`.
    Use instead: an environment variable (`os.environ["SLACK_TOKEN"]`). By default `prepare`
    drops the record; with the action `fix` it writes a placeholder (`[SLACK_TOKEN]`,
    `[PRIVATE_KEY]`, `[SECRET]`) instead.

    ## Options
    - `pii.generic_secret_min_entropy`
    """

    code = "PII006"
    name = "exposed-secret"
    default_severity = Severity.ERROR
    default_action = Action.DROP
    kinds = pii.SECRET_KINDS
    hint = "revoke the credential and remove it from the data"
