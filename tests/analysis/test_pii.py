"""PII and secret detectors (`sftgate.analysis.pii`): what each finds, what it must not, redaction."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sftgate.analysis import pii
from sftgate.analysis.pii import Match, Options, find, redact

# Made-up credentials in the real formats (random characters, never issued).
AWS_KEY_ID = "AKIA2OGYBAH6QRLZVXNM"
AWS_SECRET = "Zq8PLQ9Rs2wJalrXUtnFK7MDENGbPxRfiCY/3kz+"
GITHUB = "ghp_a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"
SLACK = "xoxb-2837465019-9283746501-q8Vt3LmZr6Wk9Yx1Np4Hs7Dg"
GOOGLE = "AIzaSyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY"
OPENAI = "sk-proj-Ab3dE5gH7jK9mN1pQ3sT5vX7zAT3BlbkFJZy8xW6vU4tS2rQ0pO9nM7lK5"
PEM_BODY = ("MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj\n"
            "MzEfYyjiWA4R4/M2bS1GB4t7NXp98C3SC6dVMvDuictGeurT8jNbvJZHtCSuYEvu\n")
PEM = f"-----BEGIN PRIVATE KEY-----\n{PEM_BODY}-----END PRIVATE KEY-----"


def kinds_and_values(text: str) -> list[tuple[str, str]]:
    return [(m.kind, text[m.start:m.end]) for m in find(text)]


# --- positives: (text, the (kind, value) pairs found) ---------------------------------------------

POSITIVES = [
    # email
    ("Write to jane.doe@gmail.com for a refund.", [("email", "jane.doe@gmail.com")]),
    ("<a href='mailto:ops+alerts@corp.acme.io'>", [("email", "ops+alerts@corp.acme.io")]),
    ("Contact: Émile <emile_b@uni-lyon.fr>.", [("email", "emile_b@uni-lyon.fr")]),
    # phone
    ("Call (415) 867-5309 tonight.", [("phone", "(415) 867-5309")]),
    ("My number is 713-786-0234.", [("phone", "713-786-0234")]),
    ("Toll free: 1-800-273-8255", [("phone", "1-800-273-8255")]),
    ("Tel (516)-974-4700", [("phone", "(516)-974-4700")]),
    ("London office +44 20 7946 0958, Tokyo +81-3-3407-8811.",
     [("phone", "+44 20 7946 0958"), ("phone", "+81-3-3407-8811")]),
    ("M: +44 (0)7792959309", [("phone", "+44 (0)7792959309")]),
    ("US: +1 (202) 898-0100", [("phone", "+1 (202) 898-0100")]),
    # credit card (Luhn-valid, issuer prefixes)
    ("Charge 4556 7375 8689 9855 please.", [("credit_card", "4556 7375 8689 9855")]),
    ("card=5425719680343218;", [("credit_card", "5425719680343218")]),
    ("Amex 3714-449243-77501 exp 04/27", [("credit_card", "3714-449243-77501")]),
    ("Discover 6011 7196 8034 3216", [("credit_card", "6011 7196 8034 3216")]),
    # IBAN (valid check digits and country lengths)
    ("Pay to DE89 3704 0044 0532 0130 00.", [("iban", "DE89 3704 0044 0532 0130 00")]),
    ("IBAN GB82WEST12345698765432", [("iban", "GB82WEST12345698765432")]),
    ("NL91ABNA0417164300", [("iban", "NL91ABNA0417164300")]),
    # IP addresses (public)
    ("Our API server is at 52.14.160.9.", [("ip_address", "52.14.160.9")]),
    ("returning ['13.250.2.198']", [("ip_address", "13.250.2.198")]),
    ("ping 2a00:1450:4001:82a::200e", [("ip_address", "2a00:1450:4001:82a::200e")]),
    # credentials
    (f"key id {AWS_KEY_ID} in the log", [("aws_access_key", AWS_KEY_ID)]),
    (f'aws_secret_access_key = "{AWS_SECRET}"', [("aws_secret_key", AWS_SECRET)]),
    (f"export GH={GITHUB}", [("github_token", GITHUB)]),
    (f'client = WebClient(token="{SLACK}")', [("slack_token", SLACK)]),
    (f"key={GOOGLE}&q=x", [("google_api_key", GOOGLE)]),
    (f"OPENAI_API_KEY={OPENAI}", [("openai_key", OPENAI)]),
    (f"Here:\n{PEM}\nDone", [("private_key", PEM)]),
    ('api_key = "f3a9C1b7E2d8G4h6J0k5L9m3"', [("generic_secret", "f3a9C1b7E2d8G4h6J0k5L9m3")]),
    ('"api_key": "061dabfea4ecedea42661027a7730355",', [("generic_secret", "061dabfea4ecedea42661027a7730355")]),
    ("DB_PASSWORD: Wq7xP2vL9kR4mT8sN3bZ", [("generic_secret", "Wq7xP2vL9kR4mT8sN3bZ")]),
]


@pytest.mark.parametrize(("text", "expected"), POSITIVES, ids=[f"{e[0][0]}-{i}" for i, (_, e) in enumerate(POSITIVES)])
def test_finds(text: str, expected: list[tuple[str, str]]) -> None:
    assert kinds_and_values(text) == expected


# --- negatives: look-alikes that are not PII ------------------------------------------------------

NEGATIVES = [
    # emails reserved for documentation, files, decorators
    "Send it to user@example.com or a@sub.example.org or bob@mail.test.",
    "<img src='icon@2x.png'>",
    "@app.route('/login')\ndef login(): pass",
    "git clone git@ -- not an address",
    "Placeholders xxxx@gmail.com and proper@email.xx",
    # numbers that are not phones: dates, ISBNs, plain runs, fictional 555 numbers, prices
    "Born 2023-01-15, moved on 12/05/2021.",
    "ISBN 978-3-16-148410-0 and ISBN 0-306-40615-2",
    "Order number 4155550132 shipped.",
    "Call 555-0100 or (212) 555-0134 (fiction).",
    "It costs 1,234,567.89 dollars; 3.14159265358979",
    "Invalid area codes (123) 456-7891 and (999) 444-1212",
    # cards: Luhn failures, test numbers, wrong grouping, too short, inside longer numbers
    "Card 4556 7375 8689 9856 fails Luhn.",
    "Stripe test card 4242 4242 4242 4242 and 4111-1111-1111-1111.",
    "Tracking 45567 37586 89985 5",
    "Serial 1234567812345670 has no issuer prefix.",
    "id 99904556737586899855 is longer",
    # IBANs: wrong checksum, wrong length, unknown country
    "DE89 3704 0044 0532 0130 01 (checksum)",
    "DE8937040044053201300 (too short)",
    "ZZ89370400440532013000",
    # IPs: versions, private and documentation ranges, section numbers, times, C++
    "Upgrade to version 1.2.3.4 or v10.0.19041.1",
    "git 1.7.7.3 and Java §15.12.2.7",
    "Router at 192.168.1.1, loopback 127.0.0.1, DNS 10.0.0.53",
    "docs use 203.0.113.7 and 198.51.100.23 and 2001:db8::1",
    '"contentVersion": "1.0.0.0"',
    "at 12:30:45 the std::vector<int> a::b::c was fe80::1",
    "IP 256.1.1.1 is not an address",
    # secrets: placeholders, documented examples, hashes without a key name, code
    "AKIAIOSFODNN7EXAMPLE and wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    'SLACK_TOKEN = "xoxp-your-token-here"',
    'api_key = "YOUR_API_KEY_GOES_HERE_12"',
    'password = "your-password-here-please"',
    "sha256 = 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    "commit d41d8cd98f00b204e9800998ecf8427e fixed it",
    "token = os.environ['GITHUB_TOKEN_VARIABLE_2']",
    "token = settings.GITHUB_TOKEN_V2_FOR_BUILDS",
    "-----BEGIN PRIVATE KEY-----\n...\n-----END PRIVATE KEY-----",
    "The key to success is consistency: 12345678901234567890abc",
]


@pytest.mark.parametrize("text", NEGATIVES)
def test_does_not_find(text: str) -> None:
    assert kinds_and_values(text) == []


# --- checks, options, kinds -----------------------------------------------------------------------


def test_luhn_and_iban_checks() -> None:
    assert pii.luhn("4556737586899855") and not pii.luhn("4556737586899856")
    assert pii.iban_ok("DE89370400440532013000") and not pii.iban_ok("DE89370400440532013001")
    assert not pii.iban_ok("DE8937040044053201300")  # Germany's IBANs have 22 characters


def test_allow_domains() -> None:
    text = "Write to help@acme.com, ops@eu.acme.com or jane@gmail.com"
    allowed = find(text, options=Options(allow_domains=frozenset({"acme.com"})))
    assert [text[m.start:m.end] for m in allowed] == ["jane@gmail.com"]
    assert len(find(text)) == 3


def test_min_entropy() -> None:
    text = 'api_key = "f3a9C1b7E2d8G4h6J0k5L9m3"'  # 4.4 bits per character
    assert find(text, options=Options(min_entropy=4.0))
    assert not find(text, options=Options(min_entropy=4.5))


def test_kinds_limits_the_detectors() -> None:
    text = "jane@gmail.com (415) 867-5309"
    assert [m.kind for m in find(text, ["phone"])] == ["phone"]
    assert [m.kind for m in find(text, {"email"})] == ["email"]
    assert find(text, ()) == []


def test_overlap_keeps_the_credential() -> None:
    # A GitHub token assigned to `token = ...` is one GitHub token, not also a generic secret.
    text = f'token = "{GITHUB}"'
    assert find(text) == [Match("github_token", 9, 9 + len(GITHUB))]
    # A private key's body is not scanned for phones or cards.
    assert [m.kind for m in find(PEM + "\n+44 20 7946 0958")] == ["private_key", "phone"]


def test_matches_are_sorted_and_disjoint() -> None:
    text = f"{SLACK}, jane@gmail.com, 52.14.160.9, 4556 7375 8689 9855, DE89370400440532013000, (415) 867-5309"
    found = find(text)
    assert [m.kind for m in found] == ["slack_token", "email", "ip_address", "credit_card", "iban", "phone"]
    assert all(a.end <= b.start for a, b in itertools.pairwise(found))


def test_numbers_in_a_run_of_numbers_are_not_taken_apart() -> None:
    # A table of figures: a card-shaped group inside it is not reported (nor is a phone after
    # another number), so a run of digits is judged whole.
    assert find("52.14.160.9 4556 7375 8689 9855") == [Match("ip_address", 0, 11)]
    assert find("ids 1990 2000 4556 7375 8689 9855") == []


# --- redaction ------------------------------------------------------------------------------------

REDACTIONS = [
    ("Write to jane.doe@gmail.com or call (415) 867-5309.", "Write to [EMAIL] or call [PHONE]."),
    ("Charge 4556 7375 8689 9855 to DE89 3704 0044 0532 0130 00", "Charge [CREDIT_CARD] to [IBAN]"),
    ("Server 52.14.160.9, version 1.2.3.4", "Server [IP_ADDRESS], version 1.2.3.4"),
    (f'aws_access_key_id = {AWS_KEY_ID}\naws_secret_access_key = "{AWS_SECRET}"',
     'aws_access_key_id = [AWS_ACCESS_KEY]\naws_secret_access_key = "[AWS_SECRET_KEY]"'),
    (f'{{"private_key": "-----BEGIN PRIVATE KEY-----\\n{PEM_BODY.replace(chr(10), "")}\\n-----END PRIVATE KEY-----\\n"}}',
     '{"private_key": "[PRIVATE_KEY]\\n"}'),
    (f"{GITHUB} {SLACK} {GOOGLE} {OPENAI}", "[GITHUB_TOKEN] [SLACK_TOKEN] [GOOGLE_API_KEY] [OPENAI_KEY]"),
    ('requests.get(url, headers={"X-Api-Key": "f3a9C1b7E2d8G4h6J0k5L9m3"})',
     'requests.get(url, headers={"X-Api-Key": "[SECRET]"})'),
    ("nothing to see here", "nothing to see here"),
]


@pytest.mark.parametrize(("text", "expected"), REDACTIONS)
def test_redact(text: str, expected: str) -> None:
    assert redact(text, find(text)) == expected


def test_redact_given_matches() -> None:
    assert redact("ab cd ef", [Match("email", 0, 2), Match("phone", 6, 8)]) == "[EMAIL] cd [PHONE]"
    assert redact("abc", []) == "abc"


# One positive of each kind, and what redacting it writes.
_REDACTED = {
    "email": ("Write to jane.doe@gmail.com now.", "Write to [EMAIL] now."),
    "phone": ("Call +44 20 7946 0958 today.", "Call [PHONE] today."),
    "credit_card": ("Charge 4556 7375 8689 9855 please.", "Charge [CREDIT_CARD] please."),
    "iban": ("IBAN GB82WEST12345698765432", "IBAN [IBAN]"),
    "ip_address": ("Our API server is at 52.14.160.9.", "Our API server is at [IP_ADDRESS]."),
    "aws_access_key": (f"key id {AWS_KEY_ID} in the log", "key id [AWS_ACCESS_KEY] in the log"),
    "aws_secret_key": (f'aws_secret_access_key = "{AWS_SECRET}"', 'aws_secret_access_key = "[AWS_SECRET_KEY]"'),
    "private_key": (f"Here:\n{PEM}\nDone", "Here:\n[PRIVATE_KEY]\nDone"),
    "github_token": (f"export GH={GITHUB}", "export GH=[GITHUB_TOKEN]"),
    "slack_token": (f'token="{SLACK}"', 'token="[SLACK_TOKEN]"'),
    "google_api_key": (f"key={GOOGLE}&q=x", "key=[GOOGLE_API_KEY]&q=x"),
    "openai_key": (f"OPENAI_API_KEY={OPENAI}", "OPENAI_API_KEY=[OPENAI_KEY]"),
    "generic_secret": ('api_key = "f3a9C1b7E2d8G4h6J0k5L9m3"', 'api_key = "[SECRET]"'),
}


@pytest.mark.parametrize("kind", pii.KINDS)
def test_every_kind_is_found_and_redacted_to_its_placeholder(kind: str) -> None:
    text, expected = _REDACTED[kind]  # a KeyError: a kind without a redaction test
    found = find(text)
    assert [m.kind for m in found] == [kind]
    assert redact(text, found) == expected
    shown = pii.mask(kind, text[found[0].start:found[0].end])
    assert shown and shown != text[found[0].start:found[0].end]  # the preview never prints the whole value


@pytest.mark.parametrize(("kind", "value", "shown"), [
    ("email", "jane.doe@gmail.com", "j…@gmail.com"),
    ("phone", "(415) 867-5309", "…09"),
    ("credit_card", "4556 7375 8689 9855", "…9855"),
    ("iban", "DE89 3704 0044 0532 0130 00", "DE…3000"),
    ("ip_address", "52.14.160.9", "52.14.…"),
    ("aws_access_key", AWS_KEY_ID, "AKIA…VXNM"),
    ("github_token", GITHUB, "ghp_…q7R8"),
    ("generic_secret", "f3a9C1b7E2d8G4h6J0k5L9m3", "f3a9…"),
    ("private_key", PEM, "-----BEGIN PRIVATE KEY-----…"),
])
def test_mask_never_shows_the_value(kind: str, value: str, shown: str) -> None:
    assert pii.mask(kind, value) == shown


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from("0123456789 -.+()@:abcxyzAKIgh_=\"'\n"), max_size=80))
def test_any_text_gives_sorted_disjoint_matches(text: str) -> None:
    found = find(text)
    assert all(0 <= m.start < m.end <= len(text) for m in found)
    assert all(a.end <= b.start for a, b in itertools.pairwise(found))
    redacted = redact(text, found)
    assert len(redacted) == len(text) + sum(len(pii.PLACEHOLDERS[m.kind]) - (m.end - m.start) for m in found)
