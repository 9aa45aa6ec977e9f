"""False positives and speed of the PII and secret detectors (`sftgate.analysis.pii`, PII rules).

    python benchmarks/bench_pii.py                    # ../shared/data/real: hits per detector, throughput
    python benchmarks/bench_pii.py --list             # + every hit with its context, to judge by reading
    python benchmarks/bench_pii.py --repeat 5         # best of 5 timings (default 3)

What it measures
----------------
1. Hits. Every string value of every JSON array file and JSONL file under --data (default
   ../shared/data/real, relative to the repository) is one text, as a rule would see a text
   part. `find` runs on each; the hits are counted per kind, and with --list printed with 40
   characters of context either side, so that each can be judged by reading it: a real
   address, number or credential, or a false positive. The judgement is recorded in
   benchmarks/README.md ("PII detectors"); `JUDGED` below holds the hits judged to be real
   (by kind and matched text), so the script prints the false positives as hits minus those.
2. Throughput: the time of `find` over every text (all detectors), best of --repeat runs,
   as MB/s of UTF-8 text per CPU second (one core; CPU time, not wall time, since the machine
   may be shared); the same for texts that hold nothing (the common case);
   per record the way the PII rules scan an example (its texts joined and searched once, part
   by part only on a hit); the six rules' `check` on each record made an example (one user
   turn with a text part per string); and `redact` of the texts with hits.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from sftgate.analysis import pii

REPO = Path(__file__).resolve().parents[1]

# Hits judged real by reading them in context (kind, matched text): people's and organisations'
# addresses and numbers in resumes, dialogues, questions and letters (some of them invented by
# the dataset's authors, which no detector can tell), a public server's address, an API key in a
# sample payload. Every other hit is a false positive; those of the last measurement are listed
# in benchmarks/README.md ("PII detectors") with the reason.
JUDGED: set[tuple[str, str]] = {
    ("email", "access@test.io"), ("email", "alerts@info6.citi.com"), ("email", "brexitqueries@revenue.ie"),
    ("email", "cpurdie@email.com"), ("email", "dtbadley0325@gmail.com"), ("email", "eCustoms@revenue.ie"),
    ("email", "ecustoms@revenue.ie"), ("email", "emma.watson@gmail.com"), ("email", "emoore@email.com"),
    ("email", "esac1@hotmail.com"), ("email", "importpolicy@revenue.ie"), ("email", "info@ippexpo.org"),
    ("email", "info@poultryfederation.com"), ("email", "info@turkeyfed.org"), ("email", "kivydevelopment@gmail.com"),
    ("email", "kolbyreese82@email.com"), ("email", "mankowitzs@evh.org"), ("email", "mark889@gmail.com"),
    ("email", "nataliebrooks212@gmail.com"), ("email", "oliver@email.com"), ("email", "poushals@ifi.uio.no"),
    ("email", "sabita@ifi.uio.no"), ("email", "support@fitclass.com"), ("email", "uscis.foia@uscis.dhs.gov"),
    ("email", "yanzhang@ifi.uio.no"), ("email", "zuhairlakhani@gmail.com"),
    ("generic_secret", "061dabfea4ecedea42661027a7730355"),
    ("ip_address", "13.250.2.198"),
    ("phone", "(516)-974-4700"), ("phone", "(774) 415-6265"), ("phone", "(816) 350-5785"),
    ("phone", "+1 (202) 898-0100"), ("phone", "+1 (479) 571-0200"), ("phone", "+1 (770) 451-0820"),
    ("phone", "+44 (0)7792959309"), ("phone", "+81-3-3407-8811"), ("phone", "1-800-222-1222"),
    ("phone", "1-800-232-4636"), ("phone", "1-800-273-8255"), ("phone", "1-800-288-2020"),
    ("phone", "1-800-362-0101"), ("phone", "1-800-375-5283"), ("phone", "1-800-784-2433"),
    ("phone", "1-800-799-7233"), ("phone", "1-877-453-1304"), ("phone", "1-888-232-6348"),
    ("phone", "1-976-344-5829"), ("phone", "310-280-1452"), ("phone", "310-280-1501"), ("phone", "314-652-3617"),
    ("phone", "413-447-9662"), ("phone", "431-893-7323"), ("phone", "435-923-6017"), ("phone", "601 789 5634"),
    ("phone", "650-636-4884"), ("phone", "709 678 5634"), ("phone", "713-786-0234"), ("phone", "866-530-4172"),
    ("phone", "888-652-3617"),
}


def strings(value: object) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from strings(v)


def load_records(root: Path) -> list[list[str]]:
    """The string values of each record (an element of a JSON array file, a line of a JSONL file)."""
    records: list[list[str]] = []
    for path in sorted(root.rglob("*")):
        if path.suffix == ".json":
            records.extend(list(strings(r)) for r in json.loads(path.read_text(encoding="utf-8")))
        elif path.suffix == ".jsonl":
            for line in path.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    records.append(list(strings(json.loads(line))))
    return records


def load_texts(root: Path) -> list[str]:
    return [text for record in load_records(root) for text in record]


def best(fn, repeat: int) -> float:
    """CPU seconds of the fastest of `repeat` runs (CPU time: the machine may be shared)."""
    times = []
    for _ in range(repeat):
        t0 = time.process_time()
        fn()
        times.append(time.process_time() - t0)
    return min(times)


def examples(records: list[list[str]]) -> list:
    """Each record as an example: one user turn with a text part per string, one model turn."""
    from sftgate.formats.gemini import to_example
    from sftgate.model import Origin

    return [to_example({"contents": [{"role": "user", "parts": [{"text": t} for t in record] or [{"text": "-"}]},
                                     {"role": "model", "parts": [{"text": "ok"}]}]}, Origin("bench", i, 0, 0))
            for i, record in enumerate(records, 1)]


def candidates(texts: list[str]) -> dict[str, tuple[int, int]]:
    """{detector: (shape candidates, verified)}: how much the checks after the regexes reject
    (Luhn and issuer prefixes, NANP codes, address classes and version contexts, mod 97,
    entropy and placeholder words). Uses the module's private patterns, as `find` does."""
    p = pii
    out = {"credit_card": [0, 0], "phone": [0, 0], "ipv4": [0, 0], "iban": [0, 0], "generic_secret": [0, 0]}
    for t in texts:
        n = len(t)
        for cluster in p._CLUSTER.finditer(t):
            s, e = max(0, cluster.start() - 1), min(n, cluster.end() + 2)
            for m in p._CARD.finditer(t, s, e):
                out["credit_card"][0] += 1
                out["credit_card"][1] += p._card_ok(m.group(0))
            for m in p._PHONE.finditer(t, s, e):
                out["phone"][0] += 1
                out["phone"][1] += p._phone_ok(m.group(0))
            for m in p._IPV4.finditer(t, s, e):
                out["ipv4"][0] += 1
                out["ipv4"][1] += p._ipv4_ok(m, t)
        for start in p._IBAN_START.finditer(t):
            m = p._IBAN.match(t, start.start())
            if m is not None:
                out["iban"][0] += 1
                out["iban"][1] += p._iban_span(m) is not None
        low = t.lower()
        for word in p._GENERIC_WORDS:
            at = low.find(word)
            while at != -1:
                m = p._ASSIGNED.match(t, at + len(word))
                if m is not None:
                    out["generic_secret"][0] += 1
                    out["generic_secret"][1] += p._generic_ok(m.group(1) or m.group(2), p.DEFAULT_MIN_ENTROPY)
                at = low.find(word, at + len(word))
    return {k: (v[0], v[1]) for k, v in out.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "real")
    parser.add_argument("--list", action="store_true", help="print every hit with its context")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    records = load_records(args.data)
    texts = [text for record in records for text in record]
    size = sum(len(t.encode("utf-8")) for t in texts)
    hits: Counter[str] = Counter()
    distinct: dict[str, set[str]] = {kind: set() for kind in pii.KINDS}
    real: Counter[str] = Counter()
    with_hits = []
    for i, text in enumerate(texts):
        found = pii.find(text)
        if found:
            with_hits.append(text)
        for m in found:
            value = text[m.start:m.end]
            hits[m.kind] += 1
            distinct[m.kind].add(value)
            real[m.kind] += (m.kind, value) in JUDGED
            if args.list:
                before = text[max(0, m.start - 40):m.start].replace("\n", "⏎")
                after = text[m.end:m.end + 40].replace("\n", "⏎")
                print(f"{m.kind:15} text {i:6}: …{before}[[{value}]]{after}…")
    clean = [t for t in texts if not pii.find(t)]
    clean_size = sum(len(t.encode("utf-8")) for t in clean)

    def run_all() -> None:
        for t in texts:
            pii.find(t)

    def run_clean() -> None:
        for t in clean:
            pii.find(t)

    def run_redact() -> None:
        for t in with_hits:
            pii.redact(t, pii.find(t))

    def run_records() -> None:  # as the PII rules scan an example: all its texts at once, then part by part on a hit
        for record in records:
            if pii.find("\n".join(record)):
                for t in record:
                    pii.find(t)

    import sftgate
    from sftgate.rules import REGISTRY
    from sftgate.rules.base import RuleContext

    ctx = RuleContext(profile=sftgate.load_profile())
    rules = [REGISTRY[code]() for code in sorted(REGISTRY) if code.startswith("PII")]
    built = examples(records)

    def run_rules() -> None:  # the six rules' check on every example, as the check pass calls them
        for example in built:
            for rule in rules:
                list(rule.check(example, ctx))

    all_s, clean_s, redact_s = best(run_all, args.repeat), best(run_clean, args.repeat), best(run_redact, args.repeat)
    records_s, rules_s = best(run_records, args.repeat), best(run_rules, args.repeat)
    print(f"\n{len(records):,} records, {len(texts):,} texts, {size / 1e6:.1f} MB of UTF-8 from {args.data}")
    print(f"{'kind':16} {'hits':>5} {'distinct':>8} {'judged real':>11} {'false positives':>15}")
    for kind in pii.KINDS:
        print(f"{kind:16} {hits[kind]:5} {len(distinct[kind]):8} {real[kind]:11} {hits[kind] - real[kind]:15}"
              f"  {' '.join(sorted(v for v in distinct[kind] if (kind, v) not in JUDGED))}")
    print("\nshape candidates -> verified:",
          ", ".join(f"{k} {a} -> {b}" for k, (a, b) in candidates(texts).items()))
    print("\nCPU seconds, best of", args.repeat)
    print(f"find, every text:        {all_s:6.3f} s  {size / 1e6 / all_s:6.1f} MB/s  ({len(texts) / all_s:,.0f} texts/s)")
    print(f"find, texts with no hit: {clean_s:6.3f} s  {clean_size / 1e6 / clean_s:6.1f} MB/s")
    print(f"as the rules do, per record:  {records_s:6.3f} s  {size / 1e6 / records_s:6.1f} MB/s  "
          f"({len(records) / records_s:,.0f} records/s)")
    print(f"PII001-PII006 check, per example: {rules_s:6.3f} s  {size / 1e6 / rules_s:6.1f} MB/s  "
          f"({rules_s / len(built) * 1e6:.0f} µs per example)")
    print(f"find + redact, {len(with_hits)} texts with hits: {redact_s:.4f} s")


if __name__ == "__main__":
    main()
