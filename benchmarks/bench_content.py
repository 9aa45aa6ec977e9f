"""Hits and speed of the built-in content rules (CNT001-CNT005) on real data.

    python benchmarks/bench_content.py                     # summary table
    python benchmarks/bench_content.py --list              # + every hit, to judge false positives
    python benchmarks/bench_content.py --data DIR --repeat 5

The real data (`../shared/data/real` beside the repository, by default) is in other formats (Alpaca, ShareGPT,
LIMA, Open-Assistant trees, DialogSum, Vertex); every string value is collected, and a value is
a model-side text when its key or its turn says so: `output` (Alpaca, LIMA, seed tasks),
`summary` (DialogSum), a ShareGPT `gpt` value, an Open-Assistant `assistant` message, a Vertex
`model` turn. Each rule's detector then runs over the texts its rule reads, with the default
profile's settings: CNT001 and CNT004 model-side texts (CNT004 only those of at least
`content.repetition_min_chars`), CNT002, CNT003 and CNT005 every text. Throughput is the UTF-8
megabytes of the texts a detector was given over its best time of `--repeat` runs (one core).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sftgate
from sftgate.analysis.content import (
    compression_ratio,
    control_character,
    find_phrase,
    mojibake,
    parse_json_payload,
    prose,
    template_marker,
)

MODEL_ROLES = {"gpt", "assistant", "model", "chatgpt", "bot"}
SKIP_KEYS = {"id", "fname", "lang", "role", "from", "message_id", "parent_id", "message_tree_id", "tree_state",
             "model_name", "name", "category", "topic", "motivation_app", "question_id", "mimeType", "fileUri"}


def _walk(node: Any, out: list[tuple[bool, str]], key: str | None, model: bool) -> None:
    if isinstance(node, str):
        if key not in SKIP_KEYS and node.strip():
            out.append((model or key in ("output", "summary"), node))
    elif isinstance(node, list):
        for value in node:
            _walk(value, out, key, model)
    elif isinstance(node, dict):
        who = node.get("from", node.get("role"))
        here = model or (isinstance(who, str) and who.lower() in MODEL_ROLES)
        for k, value in node.items():
            _walk(value, out, k, False if k == "replies" else here)  # an OASST reply is the other side's


def collect(root: Path) -> list[tuple[str, bool, str]]:
    """(file, model side?, text) for every string value in the JSON and JSONL files under root."""
    rows = []
    for path in sorted(root.rglob("*")):
        if path.suffix not in (".json", ".jsonl"):
            continue
        raw = path.read_text(encoding="utf-8")
        data = json.loads(raw) if path.suffix == ".json" else [json.loads(x) for x in raw.splitlines() if x.strip()]
        found: list[tuple[bool, str]] = []
        _walk(data, found, None, False)
        rows += [(str(path.relative_to(root)), model, text) for model, text in found]
    return rows


def _timed(detector: Callable[[str], Any], texts: list[str], repeat: int) -> tuple[float, list[Any]]:
    best, results = float("inf"), []
    for _ in range(repeat):
        start = time.perf_counter()
        results = [detector(t) for t in texts]
        best = min(best, time.perf_counter() - start)
    return best, results


def _repetitive(text: str, shortest: int, limit: float) -> float | None:
    """CNT004's test: the compression ratio of the text's prose when above the limit."""
    if text.lstrip()[:1] in ("{", "[") and parse_json_payload(text)[1] is None:
        return None
    body = prose(text)
    return ratio if len(body) >= shortest and (ratio := compression_ratio(body)) > limit else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data" / "real")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--list", action="store_true", help="print every hit")
    args = parser.parse_args()

    content = sftgate.load_profile().data["content"]
    phrases, markers = tuple(content["refusal_phrases"]), tuple(content["template_markers"])
    shortest, limit = content["repetition_min_chars"], content["max_compression_ratio"]
    rows = collect(args.data)
    every = [(f, t) for f, _, t in rows]
    model = [(f, t) for f, m, t in rows if m]
    long_model = [(f, t) for f, t in model if len(t) >= shortest]
    rules: list[tuple[str, list[tuple[str, str]], Callable[[str], Any]]] = [
        ("CNT001 refusal-phrase", model, lambda t: find_phrase(t, phrases)),
        ("CNT002 mojibake", every, mojibake),
        ("CNT003 control-character", every, control_character),
        ("CNT004 repetitive-text", long_model, lambda t: _repetitive(t, shortest, limit)),
        ("CNT005 template-marker", every, lambda t: template_marker(t, markers)),
    ]
    print(f"{len(every):,} texts ({sum(len(t.encode()) for _, t in every) / 1e6:.1f} MB), "
          f"{len(model):,} model-side ({sum(len(t.encode()) for _, t in model) / 1e6:.1f} MB), "
          f"{len(long_model):,} of them >= {shortest} characters\n")
    print("| rule | texts scanned | MB | hits | seconds | MB/s |")
    print("|---|---:|---:|---:|---:|---:|")
    listing = []
    for label, items, detector in rules:
        texts = [t for _, t in items]
        megabytes = sum(len(t.encode()) for t in texts) / 1e6
        seconds, results = _timed(detector, texts, args.repeat)
        hits = [(f, t, r) for (f, t), r in zip(items, results, strict=True) if r is not None]
        print(f"| {label} | {len(texts):,} | {megabytes:.1f} | {len(hits)} | {seconds:.3f} | {megabytes / seconds:,.0f} |")
        listing.append((label, hits))
    if args.list:
        for label, hits in listing:
            print(f"\n## {label}: {len(hits)} hits")
            for f, text, found in hits:
                at = text.find(found) if isinstance(found, str) else -1
                context = text[max(0, at - 60):at + 80] if at >= 0 else text[:140]
                print(f"- {f}: {found!r} | {context!r}")
    ratios = sorted(compression_ratio(p) for _, t in long_model if len(p := prose(t)) >= shortest)
    if ratios:
        cut = [ratios[int(q * (len(ratios) - 1))] for q in (0.5, 0.9, 0.99, 0.999)]
        print(f"\ncompression ratio of the prose of model-side texts >= {shortest} characters: p50 {cut[0]:.2f}, p90 {cut[1]:.2f}, "
              f"p99 {cut[2]:.2f}, p99.9 {cut[3]:.2f}, max {ratios[-1]:.2f}")


if __name__ == "__main__":
    main()
