"""Cloud Storage: read inputs from and write verified outputs to `gs://BUCKET/OBJECT`.

`google-cloud-storage` is the `gcs` extra, imported on first use; without it every call here
raises one `SftgateError` saying how to install it. Errors from the service (missing bucket or
object, permission denied, credentials) become one-line `SftgateError`s / `SourceError`s that
name the URI; tracebacks never reach the user.

Integrity of uploads is checked three times, because a shard that silently differs from what
the engine wrote is worse than a failed run:

1. the client library checksums what it sends (`checksum="crc32c"`): in a single-request upload
   (<= 8 MiB) the server rejects a body whose CRC32C differs; in a multi-request (resumable)
   upload the library compares the server's CRC32C with its own and deletes the object on a
   mismatch;
2. for resumable uploads the CRC32C of the whole local file, computed before sending, is declared
   up front (`crc32c_checksum_value`): the server refuses to finalise an object that differs, so
   no object is ever created from a file that changed mid-upload;
3. afterwards, the CRC32C and size the server reports for the stored object are compared with the
   local file's; on a mismatch that generation is deleted and the upload fails.

Cloud Storage reports a CRC32C for every object. A stand-in server that reports none (not the
`gcp-storage-emulator` the tests use: it computes and validates CRC32C like the service) is
handled by downloading the object and hashing it, so the check in step 3 always runs.

`STORAGE_EMULATOR_HOST` (e.g. `http://127.0.0.1:9023`) points the client at an emulator; the
library then uses anonymous credentials by itself.
"""

from __future__ import annotations

import base64
import importlib
import os
import re
import threading
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Self

import google_crc32c

from sftgate.errors import SftgateError, SourceError, UsageError

SCHEME = "gs://"
# Bytes per request of a resumable upload; the service requires a multiple of 256 KiB. Uploads of
# at most 8 MiB go in one request whatever this says (the client library's multipart limit).
CHUNK_SIZE = 32 * 1024 * 1024
READ_CHUNK_SIZE = 8 * 1024 * 1024  # bytes per ranged GET when streaming an object
LIST_THRESHOLD = 32  # stat_many answers a "directory" with this many wanted objects by listing it
LIST_PAGE_SIZE = 1000  # the service's maximum page
_HASH_BLOCK = 1 << 20
_POOL_SIZE = 32  # HTTP connections kept per host: stat_many's threads share one client
_MESSAGE_LIMIT = 300

NO_EXTRA = "reading or writing gs:// needs the gcs extra: pip install 'sftgate[gcs]'"
NO_CREDENTIALS = ("no Google Cloud credentials for gs://: run `gcloud auth application-default login` "
                  "or set GOOGLE_APPLICATION_CREDENTIALS to a service-account key file")

# Bucket names: lowercase letters, digits, '-', '_' and '.', starting and ending with a letter or
# digit; 3-63 characters, or up to 222 when dotted (each dot-separated part at most 63).
_BUCKET = re.compile(r"[a-z0-9][a-z0-9._-]*[a-z0-9]")
_REQUEST_PREFIX = re.compile(r"^[A-Z]+ https?://\S+: ")  # "PUT https://...: " before the service's message


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    """What the service reports for one stored object."""

    uri: str
    size: int
    crc32c: str  # base64 of the big-endian CRC32C, as the service reports it
    generation: int | None


# --- URIs ---------------------------------------------------------------------------------------

def is_gcs(path: str | os.PathLike[str]) -> bool:
    return os.fspath(path).startswith(SCHEME)


def split_uri(uri: str) -> tuple[str, str]:
    """`gs://bucket/a/b.jsonl` -> `("bucket", "a/b.jsonl")`; the object part may be empty."""
    if not uri.startswith(SCHEME):
        raise UsageError(f"{_shown(uri)}: not a gs:// URI (expected gs://BUCKET/OBJECT)")
    bucket, _, name = uri[len(SCHEME):].partition("/")
    if not bucket:
        raise UsageError(f"{_shown(uri)}: no bucket name (expected gs://BUCKET/OBJECT)")
    if not _valid_bucket(bucket):
        raise UsageError(f"{_shown(uri)}: invalid bucket name {bucket!r} (lowercase letters, digits, '-', "
                         "'_' and '.'; 3-63 characters; starts and ends with a letter or digit)")
    if "\r" in name or "\n" in name or len(name.encode("utf-8", "surrogatepass")) > 1024:
        raise UsageError(f"{_shown(uri)}: invalid object name (no CR or LF, at most 1024 bytes)")
    return bucket, name


def join(prefix_uri: str, name: str) -> str:
    """`gs://b/out` + `train.jsonl` -> `gs://b/out/train.jsonl`; the prefix may be a bare bucket."""
    bucket, prefix = split_uri(prefix_uri)
    prefix = prefix.rstrip("/")
    name = name.lstrip("/")
    return f"{SCHEME}{bucket}/{prefix}/{name}" if prefix else f"{SCHEME}{bucket}/{name}"


def _valid_bucket(bucket: str) -> bool:
    if not _BUCKET.fullmatch(bucket) or not 3 <= len(bucket) <= 222:
        return False
    parts = bucket.split(".")
    return len(bucket) <= 63 if len(parts) == 1 else all(0 < len(part) <= 63 for part in parts)


def _object(uri: str) -> tuple[str, str]:
    bucket, name = split_uri(uri)
    if not name:
        raise UsageError(f"{_shown(uri)}: names a bucket, not an object")
    return bucket, name


def _shown(uri: str) -> str:
    return uri if uri.isprintable() else repr(uri)


# --- checksums ----------------------------------------------------------------------------------

def crc32c_file(path: Path) -> str:
    """The CRC32C of a local file as the service reports it: base64 of the 4 big-endian bytes."""
    checksum = google_crc32c.Checksum()
    with open(path, "rb") as fh:
        while block := fh.read(_HASH_BLOCK):
            checksum.update(block)
    return _b64(checksum.digest())


def crc32c_hex(b64: str) -> str:
    """A service-style CRC32C (base64) as 8 hex digits, e.g. `yZRlqg==` -> `c99465aa`."""
    raw = base64.b64decode(b64, validate=True)
    if len(raw) != 4:
        raise ValueError(f"not a base64 CRC32C: {b64!r}")
    return raw.hex()


def _crc32c_bytes(data: bytes) -> str:
    return _b64(google_crc32c.Checksum(data).digest())


def _b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode("ascii")


# --- client -------------------------------------------------------------------------------------

_lock = threading.Lock()
# One client per process (a forked child must not share its parent's connections) and per
# emulator setting (tests point the variable at a server started after import).
_clients: dict[tuple[int, str | None], Any] = {}


def _storage() -> Any:
    try:
        return importlib.import_module("google.cloud.storage")
    except ImportError:
        raise SftgateError(NO_EXTRA) from None


def _client() -> Any:
    storage = _storage()
    key = (os.getpid(), os.environ.get("STORAGE_EMULATOR_HOST"))
    with _lock:
        client = _clients.get(key)
        if client is None:
            client = _clients[key] = _new_client(storage)
    return client


def _new_client(storage: Any) -> Any:
    from google.auth.exceptions import DefaultCredentialsError
    from requests.adapters import HTTPAdapter

    try:
        try:
            client = storage.Client()
        except OSError:  # credentials without a default project: reading and writing need none
            client = storage.Client(project=None)
    except DefaultCredentialsError:
        raise SftgateError(NO_CREDENTIALS) from None
    # The default pool keeps 10 connections per host and discards the rest noisily.
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=_POOL_SIZE)
    client._http.mount("https://", adapter)
    client._http.mount("http://", adapter)
    return client


def _retry() -> Any:
    """Exponential backoff (1 s doubling to 60 s, 120 s in all) on 408, 429, 5xx and dropped connections."""
    from google.cloud.storage.retry import DEFAULT_RETRY

    return DEFAULT_RETRY


_errors: tuple[type[BaseException], ...] = ()


def _api_errors() -> tuple[type[BaseException], ...]:
    """What the client library and its transport raise (for `except`: evaluated on every exception
    that passes, so it must not fail; without the library nothing of it can be raised)."""
    global _errors
    if not _errors:
        try:
            from google.api_core.exceptions import GoogleAPIError
            from google.auth.exceptions import GoogleAuthError
            from google.cloud.storage.exceptions import DataCorruption, InvalidResponse
            from requests.exceptions import RequestException
        except ImportError:
            return ()
        _errors = (GoogleAPIError, GoogleAuthError, DataCorruption, InvalidResponse, RequestException)
    return _errors


def _failure(exc: BaseException, uri: str, *, error: type[SftgateError] = SftgateError) -> SftgateError:
    """One line naming the URI for an error the service or the network raised."""
    from google.api_core import exceptions as api
    from google.auth import exceptions as auth

    if isinstance(exc, api.RetryError) and exc.cause is not None:
        return _failure(exc.cause, uri, error=error)
    if isinstance(exc, api.Forbidden):
        reason = f"permission denied ({_detail(exc)})"
    elif isinstance(exc, api.Unauthorized | auth.GoogleAuthError):
        reason = (f"credentials rejected ({_detail(exc)}); run `gcloud auth application-default login` "
                  "or set GOOGLE_APPLICATION_CREDENTIALS")
    elif isinstance(exc, api.GoogleAPICallError):
        reason = f"Cloud Storage answered {exc.code}: {_detail(exc)}"
    else:
        reason = f"cannot reach Cloud Storage ({type(exc).__name__}: {_detail(exc)})"
    return error(f"{_shown(uri)}: {reason}")


def _detail(exc: BaseException) -> str:
    """The service's own message when it sent one, else the exception's; one line, bounded."""
    message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    response = getattr(exc, "response", None)
    try:
        message = response.json()["error"]["message"]  # type: ignore[union-attr]
    except Exception:  # noqa: BLE001 - no JSON error body: keep the exception's text
        message = _REQUEST_PREFIX.sub("", str(message))
    text = " ".join(str(message).split())
    return text if len(text) <= _MESSAGE_LIMIT else text[:_MESSAGE_LIMIT - 1] + "…"


def _missing(bucket: str, uri: str, *, error: type[SftgateError]) -> SftgateError:
    """The error for a 404: the bucket or the object, told apart with one more request."""
    if _bucket_exists(bucket) is False:
        return error(f"{_shown(uri)}: no such bucket gs://{bucket}")
    return error(f"{_shown(uri)}: no such object")


def _bucket_exists(bucket: str) -> bool | None:
    """None when we may not ask (no storage.buckets.get permission) or the answer did not come."""
    try:
        return bool(_client().bucket(bucket).exists(retry=_retry()))
    except _api_errors():
        return None


def _info(blob: Any) -> ObjectInfo:
    return ObjectInfo(uri=f"{SCHEME}{blob.bucket.name}/{blob.name}", size=int(blob.size or 0),
                      crc32c=blob.crc32c or "", generation=blob.generation)


# --- metadata -----------------------------------------------------------------------------------

def stat(uri: str) -> ObjectInfo | None:
    """The object's size, CRC32C and generation; None when there is no such object."""
    bucket, name = _object(uri)
    info = _stat(bucket, name, uri)
    if info is None and _bucket_exists(bucket) is False:
        raise SftgateError(f"{_shown(uri)}: no such bucket gs://{bucket}")
    return info


def stat_many(uris: Iterable[str], *, workers: int = 16) -> dict[str, ObjectInfo | None]:
    """`stat` for many URIs at once, keyed by URI in input order.

    URIs are grouped by bucket and parent "directory". A group of `LIST_THRESHOLD` or more is
    answered by listing that directory (one request per `LIST_PAGE_SIZE` objects), the rest by
    concurrent single requests.
    """
    wanted = list(dict.fromkeys(uris))
    parsed = {uri: _object(uri) for uri in wanted}
    groups: dict[tuple[str, str], list[str]] = {}
    for uri, (bucket, name) in parsed.items():
        groups.setdefault((bucket, name.rpartition("/")[0]), []).append(uri)
    _client()  # created (or its error raised) once, before the threads
    found: dict[str, ObjectInfo | None] = {}
    singles = [uri for members in groups.values() if len(members) < LIST_THRESHOLD for uri in members]
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        listings = [pool.submit(_list_group, bucket, parent, {parsed[uri][1]: uri for uri in members})
                    for (bucket, parent), members in groups.items() if len(members) >= LIST_THRESHOLD]
        for listing in listings:
            answered, unanswered = listing.result()
            found.update(answered)
            singles += unanswered
        for uri, info in zip(singles, pool.map(lambda u: _stat(*parsed[u], u), singles), strict=True):
            found[uri] = info
    for bucket in sorted({parsed[uri][0] for uri, info in found.items() if info is None}):
        if _bucket_exists(bucket) is False:
            first = next(uri for uri in wanted if parsed[uri][0] == bucket)
            raise SftgateError(f"{_shown(first)}: no such bucket gs://{bucket}")
    return {uri: found[uri] for uri in wanted}


def list_prefix(prefix_uri: str) -> list[ObjectInfo]:
    """Every object under the prefix taken as a directory (`gs://b/out` lists `gs://b/out/...`)."""
    bucket, prefix = split_uri(prefix_uri)
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    try:
        blobs = list(_client().list_blobs(bucket, prefix=prefix, page_size=LIST_PAGE_SIZE, retry=_retry()))
    except _api_errors() as exc:
        raise _listing_failure(exc, bucket, prefix_uri) from None
    return sorted((_info(blob) for blob in blobs), key=lambda info: info.uri)


def _stat(bucket: str, name: str, uri: str) -> ObjectInfo | None:
    try:
        blob = _client().bucket(bucket).get_blob(name, retry=_retry())
    except _api_errors() as exc:
        raise _failure(exc, uri) from None
    return None if blob is None else _info(blob)


def _list_group(bucket: str, parent: str, by_name: dict[str, str]
                ) -> tuple[dict[str, ObjectInfo | None], list[str]]:
    """List `parent/` from the first wanted name on; (answers, URIs the listing did not settle).

    Listed names come back sorted, so a name the listing has gone past without returning does not
    exist. Paging through many unrelated objects costs more than asking for the wanted ones
    directly, so the listing stops after one page per 8 wanted names and leaves the rest to the
    caller.
    """
    names = sorted(by_name)
    budget = max(1, len(names) // 8)
    answered: dict[str, ObjectInfo | None] = {}
    prefix = f"{parent}/" if parent else ""
    last_seen: str | None = None
    complete = False
    try:
        iterator = _client().list_blobs(
            bucket, prefix=prefix, delimiter="/", start_offset=names[0], page_size=LIST_PAGE_SIZE,
            fields="items(name,size,crc32c,generation),prefixes,nextPageToken", retry=_retry())
        for count, page in enumerate(iterator.pages, start=1):
            for blob in page:
                last_seen = blob.name
                if blob.name in by_name:
                    answered[by_name[blob.name]] = _info(blob)
            if iterator.next_page_token is None:
                complete = True
                break
            if (last_seen is not None and last_seen >= names[-1]) or count >= budget:
                break
    except _api_errors() as exc:
        raise _listing_failure(exc, bucket, f"{SCHEME}{bucket}/{prefix}") from None
    settled = names[-1] if complete else last_seen
    unanswered = []
    for name in names:
        uri = by_name[name]
        if uri not in answered:
            if settled is not None and name <= settled:
                answered[uri] = None
            else:
                unanswered.append(uri)
    return answered, unanswered


def _listing_failure(exc: BaseException, bucket: str, uri: str) -> SftgateError:
    from google.api_core.exceptions import NotFound

    if isinstance(exc, NotFound):
        return SftgateError(f"{_shown(uri)}: no such bucket gs://{bucket}")
    return _failure(exc, uri)


# --- reading ------------------------------------------------------------------------------------

def open_read(uri: str, *, generation: int | None = None) -> BinaryIO:
    """A streaming reader of the object's stored bytes (ranged GETs of `READ_CHUNK_SIZE`).

    The generation is pinned (the current one, or the one given), so two reads of the same
    object see the same bytes or fail, never a mix of an old and a new upload. Bytes come as
    stored: no decompressive transcoding of `Content-Encoding: gzip` objects.
    """
    bucket, name = _object(uri)
    if generation is None:
        try:
            info = _stat(bucket, name, uri)
        except SftgateError as exc:
            raise SourceError(str(exc)) from None
        if info is None:
            raise _missing(bucket, uri, error=SourceError)
        generation = info.generation
    blob = _client().bucket(bucket).blob(name, generation=generation)
    reader = blob.open("rb", chunk_size=READ_CHUNK_SIZE, raw_download=True, retry=_retry())
    return ObjectReader(reader, uri=uri, bucket=bucket, generation=generation)  # type: ignore[return-value]


class RangeReader:
    """A seekable reader of an object generation whose every `read(n)` is one ranged GET of n
    bytes: for a few small reads far apart (finding line starts), where `open_read`'s
    buffered stream would fetch `READ_CHUNK_SIZE` at each."""

    def __init__(self, uri: str, generation: int | None) -> None:
        bucket, name = _object(uri)
        self._blob = _client().bucket(bucket).blob(name, generation=generation)
        self._uri, self._bucket, self._generation = uri, bucket, generation
        self._pos = 0

    def seek(self, pos: int, whence: int = 0) -> int:
        if whence != 0:
            raise ValueError("RangeReader seeks from the start only")
        self._pos = pos
        return pos

    def read(self, n: int) -> bytes:
        from google.api_core.exceptions import RequestRangeNotSatisfiable

        try:
            data = bytes(self._blob.download_as_bytes(start=self._pos, end=self._pos + n - 1, raw_download=True,
                                                      checksum=None, retry=_retry()))
        except RequestRangeNotSatisfiable:  # at or past the end
            return b""
        except _api_errors() as exc:
            raise _read_failure(exc, self._bucket, self._uri, self._generation) from None
        self._pos += len(data)
        return data

    def close(self) -> None:
        """Nothing held between reads."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_head(uri: str, size: int, *, generation: int | None = None) -> bytes:
    """The first `size` bytes of the object (fewer if it is shorter), in one ranged GET."""
    from google.api_core.exceptions import RequestRangeNotSatisfiable

    bucket, name = _object(uri)
    blob = _client().bucket(bucket).blob(name, generation=generation)
    try:
        return bytes(blob.download_as_bytes(start=0, end=size - 1, raw_download=True, checksum=None,
                                            retry=_retry()))
    except RequestRangeNotSatisfiable:  # the service's answer for any range of an empty object
        return b""
    except _api_errors() as exc:
        raise _read_failure(exc, bucket, uri, generation) from None


class ObjectReader:
    """`BlobReader` with the service's errors turned into one-line `SourceError`s."""

    def __init__(self, reader: Any, *, uri: str, bucket: str, generation: int | None) -> None:
        self._reader = reader
        self._uri = uri
        self._bucket = bucket
        self._generation = generation

    def read(self, n: int = -1) -> bytes:
        try:
            return self._reader.read(n)
        except _api_errors() as exc:
            raise _read_failure(exc, self._bucket, self._uri, self._generation) from None

    read1 = read

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True  # a seek starts the next ranged GET there

    def seek(self, pos: int, whence: int = 0) -> int:
        try:
            return self._reader.seek(pos, whence)
        except _api_errors() as exc:
            raise _read_failure(exc, self._bucket, self._uri, self._generation) from None

    def tell(self) -> int:
        return self._reader.tell()

    @property
    def closed(self) -> bool:
        return bool(self._reader.closed)

    def close(self) -> None:
        self._reader.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _read_failure(exc: BaseException, bucket: str, uri: str, generation: int | None) -> SourceError:
    from google.api_core.exceptions import NotFound

    if isinstance(exc, NotFound):
        if generation is not None and _bucket_exists(bucket) is not False:
            return SourceError(f"{_shown(uri)}: generation {generation} is gone "
                               "(the object was replaced or deleted while being read)")
        return _missing(bucket, uri, error=SourceError)  # type: ignore[return-value]
    return _failure(exc, uri, error=SourceError)  # type: ignore[return-value]


# --- writing ------------------------------------------------------------------------------------

def upload_file(path: Path, uri: str, *, content_type: str = "application/jsonl",
                if_generation_match: int | None = None) -> ObjectInfo:
    """Upload a local file and verify the stored object against it (see the module docstring).

    `if_generation_match=0` only creates: it fails if the object already exists.
    """
    bucket, name = _object(uri)
    try:
        size = os.stat(path).st_size  # a file that changes after this fails the CRC32C comparison
        expected = crc32c_file(Path(path))
    except OSError as exc:
        raise SftgateError(f"{os.fspath(path)}: cannot read for upload to {_shown(uri)} "
                           f"({exc.strerror or exc})") from None
    blob = _client().bucket(bucket).blob(name, chunk_size=CHUNK_SIZE)
    try:
        blob.upload_from_filename(os.fspath(path), content_type=content_type, checksum="crc32c",
                                  crc32c_checksum_value=expected, if_generation_match=if_generation_match,
                                  retry=_retry())
    except _api_errors() as exc:
        raise _upload_failure(exc, bucket, uri) from None
    return _verified(blob, uri, expected, size)


def upload_bytes(data: bytes, uri: str, *, content_type: str,
                 if_generation_match: int | None = None) -> ObjectInfo:
    """`upload_file` for a small in-memory object (a manifest, a report)."""
    bucket, name = _object(uri)
    expected = _crc32c_bytes(data)
    blob = _client().bucket(bucket).blob(name, chunk_size=CHUNK_SIZE)
    try:
        blob.upload_from_string(data, content_type=content_type, checksum="crc32c",
                                crc32c_checksum_value=expected, if_generation_match=if_generation_match,
                                retry=_retry())
    except _api_errors() as exc:
        raise _upload_failure(exc, bucket, uri) from None
    return _verified(blob, uri, expected, len(data))


def delete(uri: str) -> None:
    """Delete the object; an object that is already gone is not an error, a missing bucket is."""
    bucket, name = _object(uri)
    _delete(bucket, name, uri, generation=None)


def _delete(bucket: str, name: str, uri: str, *, generation: int | None) -> None:
    from google.api_core.exceptions import NotFound

    try:
        # Retrying a delete is safe: a repeat that finds the object gone is ignored below.
        _client().bucket(bucket).blob(name).delete(if_generation_match=generation, retry=_retry())
    except NotFound:
        if _bucket_exists(bucket) is False:
            raise SftgateError(f"{_shown(uri)}: no such bucket gs://{bucket}") from None
    except _api_errors() as exc:
        raise _failure(exc, uri) from None


def _verified(blob: Any, uri: str, expected: str, size: int) -> ObjectInfo:
    """Compare the stored object with the local bytes; delete the generation we wrote if they differ."""
    stored = blob.crc32c
    if stored is None:  # never on Cloud Storage; a stand-in server that reports no CRC32C
        stored = _crc32c_of_object(blob, uri)
    stored_size = int(blob.size) if blob.size is not None else None
    if stored == expected and stored_size == size:
        return ObjectInfo(uri=uri, size=size, crc32c=stored, generation=blob.generation)
    try:
        _delete(blob.bucket.name, blob.name, uri, generation=blob.generation)
        outcome = "the object was deleted"
    except SftgateError as exc:
        outcome = f"deleting it failed too ({str(exc).removeprefix(f'{_shown(uri)}: ')})"
    raise SftgateError(
        f"{_shown(uri)}: upload failed verification: the stored object has CRC32C {crc32c_hex(stored)} "
        f"and {stored_size} bytes, the local data {crc32c_hex(expected)} and {size} bytes; {outcome}")


def _crc32c_of_object(blob: Any, uri: str) -> str:
    checksum = google_crc32c.Checksum()
    with open_read(uri, generation=blob.generation) as reader:
        while block := reader.read(READ_CHUNK_SIZE):
            checksum.update(block)
    return _b64(checksum.digest())


def _upload_failure(exc: BaseException, bucket: str, uri: str) -> SftgateError:
    from google.api_core.exceptions import BadRequest, NotFound, PreconditionFailed
    from google.cloud.storage.exceptions import DataCorruption

    if isinstance(exc, DataCorruption):  # multi-request upload: the library already deleted it
        return SftgateError(f"{_shown(uri)}: upload failed verification ({_detail(exc)}); "
                            "the object was deleted")
    if isinstance(exc, BadRequest) and ("crc32c" in _detail(exc).lower() or "md5" in _detail(exc).lower()):
        return SftgateError(f"{_shown(uri)}: upload failed verification: Cloud Storage refused the "
                            f"object ({_detail(exc)}); nothing was stored")
    if isinstance(exc, PreconditionFailed):
        return SftgateError(f"{_shown(uri)}: already exists (or changed since it was read); not overwritten")
    if isinstance(exc, NotFound):
        return SftgateError(f"{_shown(uri)}: no such bucket gs://{bucket}")
    return _failure(exc, uri)
