"""One pool of real texts for the skew tests: every ShareGPT turn, Alpaca instruction (+input)
and output, LIMA instruction and output, DialogSum dialogue and summary; shuffled with a seed."""

from __future__ import annotations

import json
import random
from pathlib import Path


def real_texts(real: Path, seed: int = 0) -> list[str]:
    texts: list[str] = []
    for conv in json.loads((real / "chat" / "sharegpt_first3000.json").read_text("utf-8")):
        texts += [t["value"] for t in conv.get("conversations", []) if t.get("value")]
    for r in json.loads((real / "alpaca" / "alpaca_5000.json").read_text("utf-8")):
        texts += [f"{r['instruction']}\n{r['input']}".strip(), r["output"]]
    for r in json.loads((real / "chat" / "lima.json").read_text("utf-8")):
        texts += [r["instruction"], r["output"]]
    for name in ("dialogsum.train.jsonl", "dialogsum.dev.jsonl"):
        for line in (real / "dialogsum" / name).read_text("utf-8").splitlines():
            r = json.loads(line)
            texts += [r["dialogue"], r["summary"]]
    texts = [t for t in texts if t and t.strip()]
    random.Random(seed).shuffle(texts)
    return texts
