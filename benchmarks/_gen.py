"""Deterministic generator of a large Gemini SFT JSONL file from the real sample data.

The real corpora (../shared/data/real beside the repository) are converted once into a pool
of conversations; the pool is then cycled, each emitted copy getting a small seeded variation,
until the requested size is reached. The same (size, seed, GEN_VERSION) always produces the
same bytes: the only randomness is one `random.Random(seed)`, the sources are read in a fixed
order, and orjson serialises dicts in insertion order.
"""

from __future__ import annotations

import hashlib
import json
import random
import time
from dataclasses import dataclass
from pathlib import Path

import orjson

# Bump when the conversion or the variations change: it is part of the cache key, so a stale
# cached file is never benchmarked by mistake.
GEN_VERSION = 1

MIB = 1 << 20
_BATCH_BYTES = 32 * MIB  # lines are joined and written (and hashed) in batches this big

_DIALOGSUM_INSTRUCTIONS = (
    "Summarize the dialogue.",
    "Summarize the following dialogue in one or two sentences.",
    "Write a short summary of this conversation.",
    "Briefly summarize what the speakers talk about.",
)

_SYSTEM_PROMPTS = (
    "You are a helpful assistant.",
    "You are a concise and accurate assistant. Answer in English.",
    "You are an expert assistant. Think carefully and answer precisely.",
    "You summarize and answer questions for a customer-support team.",
)

_SYSTEM_PROB = 0.35  # share of emitted records carrying a systemInstruction
_SWAP_PROB = 0.5  # share of copies whose model answer gets two adjacent words swapped

# A conversation is a tuple of (role, text) turns, user first, model last, alternating.
Turns = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Generated:
    path: Path
    size_bytes: int
    records: int
    sha256: str
    seconds: float
    pool: dict[str, int]  # source name -> conversations taken from it
    cached: bool


# ---------------------------------------------------------------- source conversion


def _dialogsum(path: Path, rng: random.Random) -> list[Turns]:
    out = []
    with path.open("rb") as f:
        for line in f:
            rec = orjson.loads(line)
            dialogue, summary = rec.get("dialogue", "").strip(), rec.get("summary", "").strip()
            if dialogue and summary:
                instruction = rng.choice(_DIALOGSUM_INSTRUCTIONS)
                out.append((("user", f"{instruction}\n\n{dialogue}"), ("model", summary)))
    return out


def _instruction_text(rec: dict) -> str:
    """Alpaca-style prompt: the instruction, then the optional input below it."""
    instruction, extra = rec.get("instruction", "").strip(), (rec.get("input") or "").strip()
    return f"{instruction}\n\n{extra}" if extra else instruction


def _alpaca(path: Path) -> list[Turns]:
    out = []
    for rec in json.loads(path.read_bytes()):
        prompt, answer = _instruction_text(rec), rec.get("output", "").strip()
        if prompt and answer:  # alpaca has a few empty outputs: not valid SFT targets
            out.append((("user", prompt), ("model", answer)))
    return out


def _lima(path: Path) -> list[Turns]:
    out = []
    for rec in json.loads(path.read_bytes()):
        turns: list[tuple[str, str]] = []
        for user, assistant in rec.get("history") or []:  # earlier turns come first
            turns += [("user", user.strip()), ("model", assistant.strip())]
        turns += [("user", _instruction_text(rec)), ("model", rec.get("output", "").strip())]
        if all(text for _, text in turns):
            out.append(tuple(turns))
    return out


_SHAREGPT_ROLES = {"human": "user", "gpt": "model"}


def _sharegpt(path: Path) -> list[Turns]:
    out = []
    for rec in json.loads(path.read_bytes()):
        conv = rec.get("conversations") or []
        turns = tuple((_SHAREGPT_ROLES.get(t.get("from")), (t.get("value") or "").strip()) for t in conv)
        expected = ("user", "model") * (len(turns) // 2)
        # Keep only clean user/model alternations ending on the model: Gemini needs that, and
        # the benchmark should measure valid-looking data, not a pile of errors.
        alternates = len(turns) % 2 == 0 and tuple(role for role, _ in turns) == expected
        if turns and alternates and all(text for _, text in turns):
            out.append(turns)
    return out


def build_pool(real_dir: Path, rng: random.Random) -> tuple[list[Turns], dict[str, int]]:
    """Convert every source (fixed order), then shuffle so the sources are interleaved."""
    sources = {
        "dialogsum": lambda: _dialogsum(real_dir / "dialogsum" / "dialogsum.train.jsonl", rng),
        "alpaca": lambda: _alpaca(real_dir / "alpaca" / "alpaca_5000.json"),
        "lima": lambda: _lima(real_dir / "chat" / "lima.json"),
        "sharegpt": lambda: _sharegpt(real_dir / "chat" / "sharegpt_first3000.json"),
    }
    pool: list[Turns] = []
    counts = {}
    for name, convert in sources.items():
        convs = convert()
        counts[name] = len(convs)
        pool += convs
    rng.shuffle(pool)
    return pool, counts


# ---------------------------------------------------------------- variation and emission


def _swap_adjacent_words(text: str, rng: random.Random) -> str:
    words = text.split(" ")
    if len(words) < 3:
        return text
    i = rng.randrange(len(words) - 1)
    words[i], words[i + 1] = words[i + 1], words[i]
    return " ".join(words)


def _record(turns: Turns, copy_no: int, rng: random.Random) -> dict:
    """One Gemini record for `turns`, varied deterministically for copies after the first."""
    texts = [text for _, text in turns]
    if copy_no:
        # A numbered tag makes every copy textually distinct (no exact duplicates in the file).
        texts[0] = f"{texts[0]}\n\n[variant {copy_no}]"
        if rng.random() < _SWAP_PROB:
            texts[-1] = _swap_adjacent_words(texts[-1], rng)
    rec: dict = {}
    if rng.random() < _SYSTEM_PROB:
        rec["systemInstruction"] = {"role": "system", "parts": [{"text": rng.choice(_SYSTEM_PROMPTS)}]}
    rec["contents"] = [{"role": role, "parts": [{"text": text}]} for (role, _), text in zip(turns, texts)]
    return rec


def _write(pool: list[Turns], target_bytes: int, out: Path, rng: random.Random) -> tuple[int, int, str]:
    """Cycle the pool until `target_bytes` are written (the last record may overshoot a little)."""
    sha, written, records, batch, batch_bytes = hashlib.sha256(), 0, 0, [], 0
    with out.open("wb") as f:
        while written + batch_bytes < target_bytes:
            copy_no, turns = divmod(records, len(pool))
            line = orjson.dumps(_record(pool[turns], copy_no, rng)) + b"\n"
            batch.append(line)
            batch_bytes += len(line)
            records += 1
            if batch_bytes >= _BATCH_BYTES:
                chunk = b"".join(batch)
                f.write(chunk)
                sha.update(chunk)
                written, batch, batch_bytes = written + batch_bytes, [], 0
        chunk = b"".join(batch)
        f.write(chunk)
        sha.update(chunk)
    return written + batch_bytes, records, sha.hexdigest()


# ---------------------------------------------------------------- cache


def dataset_path(data_dir: Path, size_mb: int, seed: int) -> Path:
    return data_dir / f"gemini_sft_{size_mb}mb_seed{seed}_v{GEN_VERSION}.jsonl"


def _marker(path: Path) -> Path:
    return path.with_suffix(".meta.json")


def generate(real_dir: Path, data_dir: Path, size_mb: int, seed: int, force: bool = False) -> Generated:
    """Return the cached file for (size_mb, seed) or write it.

    The marker file is written last, so an interrupted run leaves no marker and is redone.
    """
    path = dataset_path(data_dir, size_mb, seed)
    marker = _marker(path)
    if not force and marker.exists() and path.exists():
        meta = json.loads(marker.read_text())
        if meta.get("size_bytes") == path.stat().st_size:
            return Generated(path, meta["size_bytes"], meta["records"], meta["sha256"],
                             meta["seconds"], meta["pool"], cached=True)
    data_dir.mkdir(parents=True, exist_ok=True)
    marker.unlink(missing_ok=True)
    start = time.perf_counter()
    rng = random.Random(seed)
    pool, counts = build_pool(real_dir, rng)
    size, records, digest = _write(pool, size_mb * MIB, path, rng)
    seconds = time.perf_counter() - start
    meta = {"size_bytes": size, "records": records, "sha256": digest, "seconds": round(seconds, 2),
            "pool": counts, "seed": seed, "size_mb": size_mb, "gen_version": GEN_VERSION}
    marker.write_text(json.dumps(meta, indent=2) + "\n")
    return Generated(path, size, records, digest, seconds, counts, cached=False)
