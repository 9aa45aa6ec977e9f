#!/usr/bin/env python3
"""Build the shipped example dataset in examples/oasst/ from Open-Assistant message trees.

Source: LAION-AI/Open-Assistant, model/model_eval/manual/data/en_100_tree.jsonl
        @ f1e6ed9526f5817531f3ab85441a40b3671ddccb (Apache-2.0).

Each line of the source is one message tree::

    {"message_tree_id": ..., "tree_state": ...,
     "prompt": {"message_id", "text", "role": "prompter"|"assistant", "lang",
                "deleted", "rank" (replies only), "replies": [...same shape...]}}

Every root-to-leaf path becomes one Vertex AI Gemini SFT record::

    {"contents": [{"role": "user", "parts": [{"text": ...}]},
                  {"role": "model", "parts": [{"text": ...}]}, ...]}

Rules:
  * prompter -> "user", assistant -> "model"; texts are copied verbatim.
  * Deleted messages and messages whose text is empty or whitespace-only are
    skipped together with their whole subtree (the conversation is broken there),
    so a path stops at the last usable message above them.
  * A path must start with the prompter and alternate roles; it is cut at the
    first break in alternation.  If it then ends with a prompter message, that
    message is dropped.  Paths left without a user/model pair are discarded.
  * Identical records (which arise when several prompter leaves hang off the same
    assistant message) are written once.
  * Split: sha256(message_tree_id), first 8 hex digits as int, % 10 == 0 ->
    validation, else train.  A tree never straddles the split.
  * Order: tree order in the source file, then depth-first path order following
    the replies as listed in the source.

Usage: python scripts/make_sample.py [--src PATH] [--out examples/oasst]
Standard library only.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

ROLE_MAP = {"prompter": "user", "assistant": "model"}
DEFAULT_SRC = Path(__file__).resolve().parents[2] / "shared/data/real/chat/oasst_en_100_tree.jsonl"
DEFAULT_OUT = Path("examples/oasst")


def usable(msg: dict) -> bool:
    text = msg.get("text")
    return (
        not msg.get("deleted", False)
        and isinstance(text, str)
        and text.strip() != ""
        and msg.get("role") in ROLE_MAP
    )


def iter_paths(root: dict):
    """Yield lists of messages, one per root-to-leaf path over usable messages.

    A message whose usable replies are all missing counts as a leaf.
    """
    if not usable(root):
        return
    stack = [(root, [root])]
    # Depth-first, preserving the source order of replies.
    while stack:
        msg, path = stack.pop()
        children = [r for r in msg.get("replies") or [] if usable(r)]
        if not children:
            yield path
            continue
        for child in reversed(children):
            stack.append((child, path + [child]))


def path_to_record(path: list[dict]) -> dict | None:
    if not path or path[0]["role"] != "prompter":
        return None
    turns: list[dict] = []
    expected = "prompter"
    for msg in path:
        if msg["role"] != expected:
            break  # alternation broken: keep the prefix that alternates
        turns.append(msg)
        expected = "assistant" if expected == "prompter" else "prompter"
    if turns and turns[-1]["role"] == "prompter":
        turns.pop()
    if len(turns) < 2:
        return None
    return {
        "contents": [
            {"role": ROLE_MAP[m["role"]], "parts": [{"text": m["text"]}]} for m in turns
        ]
    }


def split_of(tree_id: str) -> str:
    h = int(hashlib.sha256(tree_id.encode("utf-8")).hexdigest()[:8], 16)
    return "validation" if h % 10 == 0 else "train"


def dump(record: dict) -> str:
    return json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--src", type=Path, default=DEFAULT_SRC, help="Open-Assistant *_tree.jsonl file")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output directory")
    args = ap.parse_args(argv)

    if not args.src.is_file():
        print(f"error: source file not found: {args.src}", file=sys.stderr)
        return 1

    lines: dict[str, list[str]] = {"train": [], "validation": []}
    trees = {"train": 0, "validation": 0}
    n_paths = n_dropped = n_dupes = 0

    with args.src.open("r", encoding="utf-8") as fh:
        for lineno, raw in enumerate(fh, 1):
            if not raw.strip():
                continue
            tree = json.loads(raw)
            tree_id = tree["message_tree_id"]
            split = split_of(tree_id)
            seen: set[str] = set()
            emitted = 0
            for path in iter_paths(tree["prompt"]):
                n_paths += 1
                record = path_to_record(path)
                if record is None:
                    n_dropped += 1
                    continue
                line = dump(record)
                if line in seen:
                    n_dupes += 1
                    continue
                seen.add(line)
                lines[split].append(line)
                emitted += 1
            if emitted:
                trees[split] += 1

    args.out.mkdir(parents=True, exist_ok=True)
    for split, out_lines in lines.items():
        target = args.out / f"{split}.jsonl"
        with target.open("w", encoding="utf-8", newline="\n") as fh:
            fh.writelines(out_lines)

    total_trees = trees["train"] + trees["validation"]
    print(f"source: {args.src}")
    print(f"trees with records: {total_trees} (train {trees['train']}, validation {trees['validation']})")
    print(f"root-to-leaf paths: {n_paths} (unusable {n_dropped}, duplicates after trimming {n_dupes})")
    for split in ("train", "validation"):
        target = args.out / f"{split}.jsonl"
        print(f"{split}: {len(lines[split])} records, {target.stat().st_size} bytes -> {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
