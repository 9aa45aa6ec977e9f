"""Personal data and credentials in text: where they are, and the text with them replaced.

`find(text)` returns the spans of the kinds in `KINDS`, sorted and non-overlapping; `redact`
replaces each span with its kind's placeholder (`[EMAIL]`). Rules decide what to report.

These detectors run on every text of files of gigabytes, and almost no text holds anything.
So each detector has a prefilter (a substring test in C: no `@`, no email; no digit, no
number; or one compiled regex that finds candidates, such as runs of digits and separators)
and candidates are verified in Python only when found: Luhn and issuer prefixes for
cards, mod-97 and per-country lengths for IBANs, octet ranges and address classes for IPs.

Precision over recall (measured on ../shared/data/real: benchmarks/README.md, "PII detectors"):

- Addresses reserved for documentation are not personal data and are left out: the domains
  `example.com/.org/.net` and the `.example`, `.test`, `.invalid`, `.localhost` TLDs (RFC 2606);
  IPv4 192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24 and IPv6 2001:db8::/32 (RFC 5737, 3849),
  and with them every address that is not globally routable (private, loopback, link-local:
  `192.168.1.1` in a router guide identifies no one); AWS's documented keys (`...EXAMPLE`);
  the card issuers' published test numbers (`4111 1111 1111 1111`); North American numbers
  with the fictional exchange 555 or an area code not in service (N9X); addresses whose local
  part or top-level domain is one repeated letter (`xxxx@gmail.com`, `name@email.xx`).
- A dotted quad after "version", "v", "git" and the like is a version, and one with every part
  below 32 (`1.7.7.3`, `§15.12.2.7`, the placeholder `1.2.3.4`) a version, a section number or
  a public resolver (`8.8.8.8`), not someone's address; so is one ending in .0 or .255.
- Phones are international numbers written with `+` and the country code, or North American
  numbers with separators (`(415) 867-5309`). A plain run of digits is not a phone, nor a date,
  an ISBN or a national number without a country code (too many tables look like one).
- Cards, phones and IPv4 addresses are looked for inside runs of digits and separators, and a
  number inside a longer run (`1990 4556 7375 8689 9855`) is not taken apart from it.
- A generic secret is a value of 20+ characters assigned to a name containing key, token,
  secret or password (`api_key = "..."`), with letters and digits, no placeholder word, and a
  Shannon entropy of at least `min_entropy` bits per character.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections import Counter
from collections.abc import Collection, Sequence
from typing import NamedTuple


class Match(NamedTuple):
    kind: str
    start: int  # character offsets in the text
    end: int


PLACEHOLDERS: dict[str, str] = {
    "email": "[EMAIL]",
    "phone": "[PHONE]",
    "credit_card": "[CREDIT_CARD]",
    "iban": "[IBAN]",
    "ip_address": "[IP_ADDRESS]",
    "aws_access_key": "[AWS_ACCESS_KEY]",
    "aws_secret_key": "[AWS_SECRET_KEY]",
    "private_key": "[PRIVATE_KEY]",
    "github_token": "[GITHUB_TOKEN]",
    "slack_token": "[SLACK_TOKEN]",
    "google_api_key": "[GOOGLE_API_KEY]",
    "openai_key": "[OPENAI_KEY]",
    "generic_secret": "[SECRET]",
}
KINDS: tuple[str, ...] = tuple(PLACEHOLDERS)
SECRET_KINDS = frozenset({"aws_access_key", "aws_secret_key", "private_key", "github_token", "slack_token",
                          "google_api_key", "openai_key", "generic_secret"})
# What a kind is called in a message.
LABELS: dict[str, str] = {
    "email": "email address", "phone": "phone number", "credit_card": "credit card number", "iban": "IBAN",
    "ip_address": "IP address", "aws_access_key": "AWS access key id", "aws_secret_key": "AWS secret access key",
    "private_key": "private key", "github_token": "GitHub token", "slack_token": "Slack token",
    "google_api_key": "Google API key", "openai_key": "OpenAI API key", "generic_secret": "secret",
}
# On overlap the higher rank wins: a credential over personal data, a specific format over a
# generic one (a GitHub token assigned to `token = ...` is a GitHub token).
_RANK = {"private_key": 9, "aws_access_key": 8, "github_token": 8, "slack_token": 8, "google_api_key": 8,
         "openai_key": 8, "aws_secret_key": 7, "generic_secret": 6, "credit_card": 5, "iban": 4, "email": 3,
         "ip_address": 2, "phone": 1}

DEFAULT_MIN_ENTROPY = 3.5


class Options(NamedTuple):
    """Profile settings (`pii.*`) the detectors read."""

    allow_domains: frozenset[str] = frozenset()  # email domains (and their subdomains) never reported
    min_entropy: float = DEFAULT_MIN_ENTROPY  # generic secrets: bits per character


DEFAULTS = Options()

# --- email ---------------------------------------------------------------------------------------

_RESERVED_DOMAINS = frozenset({"example.com", "example.org", "example.net"})
_RESERVED_TLDS = frozenset({"example", "test", "invalid", "localhost", "local"})
# A name@2x.png is a file (retina images), not an address.
_FILE_TLDS = frozenset({"png", "jpg", "jpeg", "gif", "svg", "webp", "bmp", "ico", "css", "js", "ts", "py", "json",
                        "html", "htm", "txt", "md", "pdf", "zip", "gz", "tar", "exe", "dll", "so", "min", "map"})


def _email_ok(local: str, domain: str, allow: frozenset[str]) -> bool:
    domain = domain.lower()
    tld = domain.rsplit(".", 1)[-1]
    if tld in _RESERVED_TLDS or tld in _FILE_TLDS:
        return False
    if len(set(local.lower())) == 1 or len(set(tld)) == 1:
        return False  # xxxx@gmail.com, name@email.xx: placeholders
    for reserved in (_RESERVED_DOMAINS, allow):
        if domain in reserved or any(domain.endswith("." + d) for d in reserved):
            return False
    return True


# --- digits: cards, phones, IBANs, IPs -----------------------------------------------------------

# Not part of a longer number: no digit, letter or dotted/dashed/spaced digit on either side.
_CARD = re.compile(r"(?<![\w.\-+/])(?<!\d[ \-])\d(?:[ \-]?\d){12,18}(?![\w\-/]|[. \-]\d)")
_CARD_GROUPS = frozenset({(4, 4, 4, 4), (4, 4, 4, 4, 3), (4, 6, 5), (4, 6, 4), (4, 4, 4, 1), (4, 4, 4, 2),
                          (4, 4, 4, 3), (4, 4, 5), (4, 4, 4, 4, 1), (4, 4, 4, 4, 2)})
# Issuer prefixes: Visa 4; Mastercard 51-55, 2221-2720; Amex 34, 37; Diners 300-305, 36, 38, 39;
# JCB 3528-3589; Discover 6011, 644-649, 65; UnionPay 62; Maestro 50, 56-69.
_CARD_PREFIX = re.compile(r"4|5[0-9]|2(?:2[2-9]|[3-6]|7[01]|720)|3[4789]|30[0-5]|35(?:2[89]|[3-8])|6")
_TEST_CARDS = frozenset({
    "4111111111111111", "4242424242424242", "4012888888881881", "4222222222222", "4000056655665556",
    "5555555555554444", "5105105105105100", "5200828282828210", "2223003122003222",
    "378282246310005", "371449635398431", "378734493671000", "6011111111111117", "6011000990139424",
    "3530111333300000", "3566002020360505", "30569309025904", "38520000023237", "6200000000000005",
})


def luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i & 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def _card_ok(span: str) -> bool:
    spaced, dashed = " " in span, "-" in span
    if spaced and dashed:
        return False
    if spaced or dashed:
        groups = span.split(" " if spaced else "-")
        if tuple(len(g) for g in groups) not in _CARD_GROUPS:
            return False
        digits = "".join(groups)
    else:
        digits = span
    if not 13 <= len(digits) <= 19 or not _CARD_PREFIX.match(digits):
        return False
    if len(set(digits)) < 3 or digits in _TEST_CARDS:
        return False
    return luhn(digits)


_PHONE = re.compile(
    r"(?<![\w+.\-/=])(?<!\d[ .\-])(?:"
    r"\+\d{1,3}(?:[ .\-]?\(\d{1,4}\))?(?:[ .\-]?\d{1,5}){2,6}"  # international: +CC and groups
    r"|(?:\+?1[ .\-])?(?:\(\d{3}\)[ \-]?|\d{3}[.\- ])\d{3}[.\- ]\d{4}"  # North American, separated
    r")(?![\w\-]|[./ ]\d)")


def _phone_ok(span: str) -> bool:
    digits = re.sub(r"\D", "", span)
    if span.startswith("+") and digits[0] != "1":  # E.164: a country code and up to 15 digits
        return 8 <= len(digits) <= 15 and len(set(digits)) > 2
    if len(digits) == 11 and digits[0] == "1":
        digits = digits[1:]
    if len(digits) != 10:
        return False
    area, exchange = digits[:3], digits[3:6]
    # North American Numbering Plan: area and exchange codes start with 2-9; N11 codes are
    # services; N9X area codes are reserved (not in service); 555 is the exchange of fiction
    # and documentation.
    return area[0] not in "01" and exchange[0] not in "01" and area[1:] != "11" and area[1] != "9" \
        and exchange != "555"


# Candidates are found by their start alone (the fastest scan), then matched whole; the
# character before is checked on a match (a lookbehind would run at every position).
_IBAN_START = re.compile(r"[A-Z][A-Z]\d\d")
_IBAN = re.compile(r"([A-Z]{2})(\d{2})((?: ?[A-Z0-9]){11,30})(?![\w\-])")
_IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22, "BR": 29, "BY": 28,
    "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28, "EE": 20, "EG": 29, "ES": 24, "FI": 18,
    "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28, "HR": 21, "HU": 28, "IE": 22,
    "IL": 23, "IQ": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32, "LI": 21, "LT": 20,
    "LU": 20, "LV": 21, "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MR": 27, "MT": 31, "MU": 30, "NL": 18, "NO": 15,
    "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "SA": 24, "SC": 31, "SE": 24, "SI": 19,
    "SK": 24, "SM": 27, "ST": 25, "SV": 28, "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20,
}


def iban_ok(compact: str) -> bool:
    """A compact IBAN (no spaces): its country's length and check digits (ISO 13616 mod 97)."""
    if _IBAN_LENGTHS.get(compact[:2]) != len(compact):
        return False
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(ch, 36)) for ch in rearranged)) % 97 == 1


def _iban_span(m: re.Match[str]) -> tuple[int, int] | None:
    """The IBAN in a candidate, which may run on into the next word: the longest prefix of the
    right length for the country, cut at a group boundary when the IBAN is written in groups."""
    want = _IBAN_LENGTHS.get(m.group(1))
    before = m.string[m.start() - 1] if m.start() else " "
    if want is None or before.isalnum() or before in "_-":
        return None
    text = m.group(0)
    count = 0
    for i, ch in enumerate(text):
        if ch != " ":
            count += 1
        if count == want:
            end = i + 1
            if end < len(text) and text[end] != " ":
                return None  # the code runs on: a longer token
            compact = text[:end].replace(" ", "")
            if " " in text[:end] and any(len(g) != 4 for g in text[:end].split(" ")[:-1]):
                return None
            return (m.start(), m.start() + end) if iban_ok(compact) else None
    return None


_IPV4 = re.compile(r"(?<![\w.\-§])(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})(?![\w\-]|\.\d)")
_VERSIONISH = re.compile(r"(?i)(?:version|@|\b(?:ver\.?|v|release|build|firmware|update|patch|rev\.?|revision|git|"
                         r"python|java|node|chrome|firefox|ios|android|windows|macos|kernel|linux))[\"']?\s*[:=]?\s*[\"']?$")


def _ipv4_ok(m: re.Match[str], text: str) -> bool:
    octets = [int(o) for o in m.groups()]
    if any(len(o) > 1 and o[0] == "0" for o in m.groups()) or max(octets) > 255:
        return False
    # Small numbers in every place: a version or a section number (`1.7.7.3`, `§15.12.2.7`),
    # the placeholder `1.2.3.4`, or a public resolver (`8.8.8.8`): no one's address.
    if max(octets) < 32 or octets[3] in (0, 255):
        return False
    if _VERSIONISH.search(text[max(0, m.start() - 16):m.start()]):
        return False
    return ipaddress.IPv4Address(m.group(0)).is_global


def _ipv6_ok(span: str) -> bool:
    if span.count(":") < 2 or ("::" not in span and span.count(":") != 7):
        return False
    groups = [g for g in span.split(":") if g]
    if len(groups) < 3 or not any(c.isdigit() for c in span):
        return False  # `a::b` in C++, `::1`: not an address anyone owns
    try:
        address = ipaddress.IPv6Address(span)
    except ValueError:
        return False
    return address.is_global and address.ipv4_mapped is None


# --- credentials ---------------------------------------------------------------------------------

# (kind, a literal every match contains, the pattern): the regex runs only when the literal is in
# the text, and a pattern that starts with a literal is searched for by the regex engine's
# fast prefix scan.
_TOKENS: tuple[tuple[str, str, re.Pattern[str]], ...] = (
    ("aws_access_key", "AKIA", re.compile(r"AKIA[A-Z0-9]{16}(?![A-Za-z0-9])")),
    ("aws_access_key", "ASIA", re.compile(r"ASIA[A-Z0-9]{16}(?![A-Za-z0-9])")),
    ("github_token", "gh", re.compile(r"gh[pousr]_[A-Za-z0-9]{36,255}(?![A-Za-z0-9_])")),
    ("github_token", "github_pat_", re.compile(r"github_pat_[A-Za-z0-9_]{22,255}(?![A-Za-z0-9_])")),
    ("slack_token", "xox", re.compile(r"xox[abposr]-[A-Za-z0-9\-]{10,250}(?![A-Za-z0-9\-])")),
    ("slack_token", "hooks.slack.com",
     re.compile(r"https://hooks\.slack\.com/services/T[A-Z0-9]{6,12}/B[A-Z0-9]{6,12}/[A-Za-z0-9]{20,32}")),
    ("google_api_key", "AIza", re.compile(r"AIza[0-9A-Za-z_\-]{35}(?![A-Za-z0-9_\-])")),
    ("openai_key", "sk-", re.compile(r"sk-(?:(?:proj|svcacct|admin)-)?(?:[A-Za-z0-9_\-]{20,}T3BlbkFJ[A-Za-z0-9_\-]{20,}"
                                     r"|[A-Za-z0-9]{48})(?![A-Za-z0-9_\-])")),
)
_PRIVATE_KEY = re.compile(
    r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----"
    r"(?:[A-Za-z0-9+/=\s]|\\[nr]|(?:Proc-Type|DEK-Info):[^\n\\]*)*"
    r"(?:-----END (?:[A-Z0-9]+ )*PRIVATE KEY-----)?")
# After a name containing one of these words (found in the lower-cased text), an assignment:
# `api_key = "..."`, `"token": "..."`, `PASSWORD=...`, `secret => '...'`.
_GENERIC_WORDS = ("key", "token", "secret", "passw", "pwd", "credential")
_ASSIGNED = re.compile(
    r"[\w\-]{0,30}[\"']?\s*(?:=>|:=|[:=])\s*"
    r"(?:[\"'`]([A-Za-z0-9+/_\-=.~]{20,200})[\"'`]|([A-Za-z0-9+/_\-=~]{20,200})(?![\w.\-/+=~]))")
_AWS_SECRET_NAME = re.compile(r"(?:aws_?secret|secret_?access_?key)")
_PLACEHOLDER_WORDS = re.compile(r"(?i)example|your|xxxx|placeholder|dummy|sample|redacted|insert|changeme|"
                                r"here|secret|token|password|0000|1234|abcd")


def entropy(value: str) -> float:
    """Shannon entropy in bits per character."""
    n = len(value)
    return -sum(c / n * math.log2(c / n) for c in Counter(value).values())


def _generic_ok(value: str, min_entropy: float) -> bool:
    if _PLACEHOLDER_WORDS.search(value):
        return False
    digits = sum(ch.isdigit() for ch in value)
    letters = sum(ch.isalpha() for ch in value)
    if digits < 2 or letters < 2:
        return False
    if "." in value and all(part.isidentifier() for part in value.split(".")):
        return False  # a dotted name: `token = settings.GITHUB_TOKEN_V2`
    return entropy(value) >= min_entropy


def _private_key_ok(span: str) -> bool:
    body = span.split("-----", 3)[2] if span.count("-----") >= 2 else span
    return sum(ch.isalnum() or ch in "+/" for ch in body.replace("\\n", "").replace("\\r", "")) >= 64


# --- find and redact -------------------------------------------------------------------------------


def find(text: str, kinds: Collection[str] | None = None, *, options: Options = DEFAULTS) -> list[Match]:
    """The PII and secrets in `text`, sorted by start, non-overlapping (on overlap the more
    specific kind, a credential before personal data, keeps its span). `kinds` limits the
    detectors that run (and so the overlaps considered) to those kinds."""
    want = _ALL if kinds is None else frozenset(kinds)
    found: list[Match] = []
    if "@" in text and "email" in want:
        _emails(text, options.allow_domains, found)
    if "PRIVATE KEY" in text and "private_key" in want:
        found.extend(Match("private_key", m.start(), m.end()) for m in _PRIVATE_KEY.finditer(text)
                     if _private_key_ok(m.group(0)))
    for kind, literal, pattern in _TOKENS:
        if literal in text and kind in want:
            found.extend(Match(kind, m.start(), m.end()) for m in pattern.finditer(text)
                         if _token_ok(kind, text, m))
    if want & _ASSIGNED_KINDS:
        low = text.lower()
        # (unrolled: a generator per text costs more than the substring tests)
        if "key" in low or "token" in low or "secret" in low or "passw" in low or "pwd" in low \
                or "credential" in low:
            _assigned(text, low, want, options.min_entropy, found)
    if want & _DIGIT_KINDS and ("0" in text or "1" in text or "2" in text or "3" in text or "4" in text
                                or "5" in text or "6" in text or "7" in text or "8" in text or "9" in text):
        _numbers(text, want, found)
    if len(found) < 2:
        return found
    return _resolve(found)


_ALL = frozenset(KINDS)
_ASSIGNED_KINDS = frozenset({"generic_secret", "aws_secret_key"})
_DIGIT_KINDS = frozenset({"credit_card", "phone", "iban", "ip_address"})
# A run of digits and the separators numbers are written with: cards, phones and IPv4
# addresses are looked for only inside one (a text without digits is not scanned at all).
_CLUSTER = re.compile(r"[0-9][0-9 ().+/-]{5,}")
_LOCAL_PART = re.compile(r"[A-Za-z0-9][A-Za-z0-9._%+\-]{0,63}\Z")
_DOMAIN = re.compile(r"(?:[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}(?![\w\-@]|\.[A-Za-z0-9])")


def _emails(text: str, allow: frozenset[str], found: list[Match]) -> None:
    at = text.find("@")
    while at != -1:
        local = _LOCAL_PART.search(text, max(0, at - 64), at)
        domain = _DOMAIN.match(text, at + 1)
        if local is not None and domain is not None and _email_ok(local.group(0), domain.group(0), allow):
            start = local.start()
            if start == 0 or not (text[start - 1].isalnum() or text[start - 1] in "_.%+-"):
                found.append(Match("email", start, domain.end()))
        at = text.find("@", at + 1)


def _token_ok(kind: str, text: str, m: re.Match[str]) -> bool:
    start = m.start()
    if start and (text[start - 1].isalnum() or text[start - 1] in "_-"):
        return False  # inside a longer word
    value = m.group(0)
    if kind == "aws_access_key":
        return not value.endswith("EXAMPLE")  # AWS's documented example keys
    if kind == "slack_token" and value.startswith("xox"):
        return sum(ch.isdigit() for ch in value) >= 8 and not _PLACEHOLDER_WORDS.search(value)
    if kind in ("openai_key", "github_token"):
        return entropy(value) >= 4.0 and not _PLACEHOLDER_WORDS.search(value[4:])
    return True


def _assigned(text: str, low: str, want: frozenset[str], min_entropy: float, found: list[Match]) -> None:
    """Values assigned to a name containing key, token, secret or password."""
    seen = set()
    for word in _GENERIC_WORDS:
        at = low.find(word)
        while at != -1:
            m = _ASSIGNED.match(text, at + len(word))
            if m is not None:
                group = 1 if m.group(1) is not None else 2
                start, end = m.span(group)
                if start not in seen:
                    seen.add(start)
                    value = m.group(group)
                    name = low[max(0, at - 20):m.start(group)]
                    if "aws_secret_key" in want and len(value) == 40 and _AWS_SECRET_NAME.search(name) \
                            and "EXAMPLE" not in value and entropy(value) >= 4.0:
                        found.append(Match("aws_secret_key", start, end))
                    elif "generic_secret" in want and _generic_ok(value, min_entropy):
                        found.append(Match("generic_secret", start, end))
            at = low.find(word, at + len(word))


def _numbers(text: str, want: frozenset[str], found: list[Match]) -> None:
    card, phone, ip = "credit_card" in want, "phone" in want, "ip_address" in want
    n = len(text)
    clusters = False
    for cluster in _CLUSTER.finditer(text):
        clusters = True
        # A run starts at a digit: from the character before it, a phone's `+` or `(` is seen;
        # two characters after it, the patterns' lookaheads see what follows.
        start, end = max(0, cluster.start() - 1), min(n, cluster.end() + 2)
        if card:
            found.extend(Match("credit_card", m.start(), m.end()) for m in _CARD.finditer(text, start, end)
                         if _card_ok(m.group(0)))
        if phone:
            found.extend(Match("phone", m.start(), m.end()) for m in _PHONE.finditer(text, start, end)
                         if _phone_ok(m.group(0)))
        if ip and "." in cluster.group(0):
            found.extend(Match("ip_address", m.start(), m.end()) for m in _IPV4.finditer(text, start, end)
                         if _ipv4_ok(m, text))
    # Every country's account number holds a run of digits: no run, no IBAN.
    if clusters and "iban" in want:
        for start in _IBAN_START.finditer(text):
            m = _IBAN.match(text, start.start())
            span = None if m is None else _iban_span(m)
            if span is not None:
                found.append(Match("iban", *span))
    if ip and ":" in text:
        _ipv6(text, found)


# An IPv6 address holds `::` or `:hex:`; from each, the candidate is the run of hex digits and
# colons around it.
_IPV6_ANCHOR = re.compile(r":(?:[0-9A-Fa-f]{1,4})?:")
_HEX_LEFT = re.compile(r"[0-9A-Fa-f:]{0,40}\Z")
_HEX_RIGHT = re.compile(r"[0-9A-Fa-f:]{0,40}")


def _ipv6(text: str, found: list[Match]) -> None:
    done = -1
    for anchor in _IPV6_ANCHOR.finditer(text):
        at = anchor.start()
        if at < done:
            continue
        left = _HEX_LEFT.search(text, max(0, at - 40), at)
        right = _HEX_RIGHT.match(text, at)
        start, end = (left.start() if left else at), right.end() if right else at
        done = end
        if (start and (text[start - 1].isalnum() or text[start - 1] in "_.:")) or \
                (end < len(text) and (text[end].isalnum() or text[end] == "_")):
            continue
        if _ipv6_ok(text[start:end]):
            found.append(Match("ip_address", start, end))


def _resolve(found: list[Match]) -> list[Match]:
    kept: list[Match] = []
    for m in sorted(found, key=lambda m: (-_RANK[m.kind], m.start, -(m.end - m.start))):
        if all(m.end <= k.start or k.end <= m.start for k in kept):
            kept.append(m)
    kept.sort(key=lambda m: m.start)
    return kept


def redact(text: str, matches: Sequence[Match]) -> str:
    """`text` with each match (sorted, non-overlapping, as `find` returns them) replaced by
    its kind's placeholder."""
    if not matches:
        return text
    out = []
    at = 0
    for m in matches:
        out.append(text[at:m.start])
        out.append(PLACEHOLDERS[m.kind])
        at = m.end
    out.append(text[at:])
    return "".join(out)


def mask(kind: str, value: str) -> str:
    """A preview that says which value was found without repeating it: the last digits of a
    number, the domain of an email address, the first and last four characters of a key."""
    if kind == "email":
        local, _, domain = value.partition("@")
        return f"{local[:1]}…@{domain}"
    if kind in ("phone", "credit_card"):
        digits = re.sub(r"\D", "", value)
        return f"…{digits[-2 if kind == 'phone' else -4:]}"
    if kind == "iban":
        compact = value.replace(" ", "")
        return f"{compact[:2]}…{compact[-4:]}"
    if kind == "ip_address":
        sep = "." if "." in value else ":"
        return sep.join(value.split(sep)[:2]) + sep + "…"
    if kind == "private_key":
        return value[:value.find("-----", 5) + 5] + "…"
    if len(value) >= 32 or kind == "aws_access_key":  # an access key id is not secret by itself
        return f"{value[:4]}…{value[-4:]}"
    return f"{value[:4]}…"
