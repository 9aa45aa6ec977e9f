"""Input sources: a path the user named, opened as a stream of bytes.

Compression is recognised by the file's first bytes, not its name, so `data.jsonl` that is really
gzip, or `data.gz` that is not, both read correctly. Problems with the file itself (missing, a
directory, no permission) are `SourceError`s: the run cannot start, exit code 2.

A `gs://bucket/object` input is a remote source: its size and first bytes come from Cloud Storage
(`sftgate.io.gcs`), and it is streamed in order, never read in parallel byte ranges.
"""

from __future__ import annotations

import errno
import os
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePath, PurePosixPath
from typing import BinaryIO, Self

from sftgate.errors import SftgateError, SourceError

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


@dataclass(frozen=True, slots=True)
class Source:
    """One input file and what we know of it before reading it.

    For a local file `path` is the file. For a Cloud Storage object `uri` is `gs://bucket/object`,
    `generation` the object generation every read is pinned to, and `path` the object name as a
    pure path (so `path.name` is still the file name); nothing on the local disk.
    """

    path: PurePath
    name: str  # as the user wrote it: the name findings are reported under
    size: int  # bytes on disk or in the bucket (compressed size for compressed files)
    compression: str | None  # None, "gzip" or "zstd"
    uri: str | None = None
    generation: int | None = None

    @property
    def remote(self) -> bool:
        return self.uri is not None

    @property
    def seekable(self) -> bool:
        """Plain local files can be read in parallel byte ranges; the rest only in order."""
        return self.compression is None and self.uri is None

    @property
    def ranged(self) -> bool:
        """Whether any byte range can be read without the bytes before it: a plain local file,
        or a plain Cloud Storage object (ranged GETs). Compressed streams only go in order."""
        return self.compression is None

    def open_probe(self) -> BinaryIO:
        """A seekable reader for a few small reads far apart (planning byte ranges): the file,
        or an object's ranged GETs of just what is read. Only for `ranged` sources."""
        if self.uri is not None:
            from sftgate.io import gcs

            return gcs.RangeReader(self.uri, self.generation)  # type: ignore[return-value]
        return open(self.path, "rb")

    def open_raw(self) -> BinaryIO:
        """A binary stream of the bytes as stored (still compressed), e.g. to hash the input."""
        if self.uri is not None:
            from sftgate.io import gcs

            return gcs.open_read(self.uri, generation=self.generation)
        return open(self.path, "rb")

    def open(self) -> BinaryIO:
        """A binary stream of the (decompressed) content."""
        raw = self.open_raw()
        if self.compression == "gzip":
            return GzipStream(raw)  # type: ignore[return-value]
        if self.compression == "zstd":
            import zstandard

            return zstandard.ZstdDecompressor().stream_reader(raw, closefd=True)  # type: ignore[return-value]
        return raw


def open_source(name: str | os.PathLike[str]) -> Source:
    """Stat and sniff one input; raise `SourceError` with a one-line reason if it is unusable."""
    shown = os.fspath(name)
    if shown.startswith("gs://"):
        return _open_remote(shown)
    path = Path(shown)
    try:
        st = path.stat()
    except FileNotFoundError:
        raise SourceError(f"{shown}: no such file") from None
    except PermissionError:
        raise SourceError(f"{shown}: permission denied") from None
    except OSError as exc:
        raise SourceError(f"{shown}: cannot open ({exc.strerror or exc})") from None
    if path.is_dir():
        raise SourceError(f"{shown}: is a directory, not a JSONL file")
    try:
        with open(path, "rb") as fh:
            head = fh.read(4)
    except PermissionError:
        raise SourceError(f"{shown}: permission denied") from None
    except OSError as exc:
        reason = "is a directory" if exc.errno == errno.EISDIR else (exc.strerror or str(exc))
        raise SourceError(f"{shown}: cannot read ({reason})") from None
    return Source(path=path, name=shown, size=st.st_size, compression=_compression(shown, head))


def _open_remote(uri: str) -> Source:
    from sftgate.io import gcs

    try:
        _, name = gcs.split_uri(uri)
        if not name or name.endswith("/"):
            raise SourceError(f"{uri}: names a bucket or a folder, not a JSONL object")
        info = gcs.stat(uri)
        if info is None:
            raise SourceError(f"{uri}: no such object")
        head = gcs.read_head(uri, len(ZSTD_MAGIC), generation=info.generation) if info.size else b""
    except SourceError:
        raise
    except SftgateError as exc:  # a missing bucket, no permission, no gcs extra: the input is unusable
        raise SourceError(str(exc)) from None
    return Source(path=PurePosixPath(name), name=uri, size=info.size, compression=_compression(uri, head),
                  uri=uri, generation=info.generation)


def _compression(shown: str, head: bytes) -> str | None:
    if head.startswith(GZIP_MAGIC):
        return "gzip"
    if head.startswith(ZSTD_MAGIC):
        try:
            import zstandard  # noqa: F401
        except ImportError:
            raise SourceError(
                f"{shown}: is zstd-compressed; install the `zstandard` package to read it"
            ) from None
        return "zstd"
    return None


class GzipStream:
    """Decompress gzip (one or more members) and keep every byte that precedes a break.

    `gzip.GzipFile.read(n)` raises on a truncated stream and drops what it had already
    decompressed for that call, so the last lines before the cut would be lost. This reader
    returns them first, then raises `EOFError` (truncated) or `zlib.error` (corrupt).
    """

    def __init__(self, raw: BinaryIO, block: int = 1 << 20) -> None:
        self._raw = raw
        self._block = block
        self._inflater = zlib.decompressobj(wbits=31)
        self._in_member = False  # bytes of a member were fed and its end not yet seen
        self._buffer = bytearray()
        self._error: Exception | None = None
        self._done = False

    def seekable(self) -> bool:
        return False

    def read(self, n: int = -1) -> bytes:
        while (n < 0 or len(self._buffer) < n) and not self._done:
            self._fill()
        if not self._buffer and self._error is not None:
            error, self._error = self._error, None
            raise error
        if n < 0 or n >= len(self._buffer):
            out = bytes(self._buffer)
            self._buffer.clear()
        else:
            out = bytes(self._buffer[:n])
            del self._buffer[:n]
        return out

    def _fill(self) -> None:
        data = self._raw.read(self._block)
        if not data:
            self._done = True
            if self._in_member:
                self._error = EOFError("compressed file ended before the end-of-stream marker was reached")
            return
        try:
            while data:
                self._in_member = True
                self._buffer += self._inflater.decompress(data)
                if not self._inflater.eof:
                    break
                data = self._inflater.unused_data  # the next member, if any
                self._inflater = zlib.decompressobj(wbits=31)
                self._in_member = False
        except zlib.error as exc:
            self._error = exc
            self._done = True

    def close(self) -> None:
        self._raw.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
