"""`sftgate.io.gcs` and gs:// sources, through the real client against a real JSON API server.

The server is `gcp-storage-emulator` on loopback (tests/gcs_server.py); nothing here mocks the
client. The tests that need it skip when the emulator or google-cloud-storage is not installed.
"""

from __future__ import annotations

import gzip
import multiprocessing
import os
import pickle
import random
import subprocess
import sys
from pathlib import Path

import google_crc32c
import pytest

from sftgate.errors import SftgateError, SourceError, UsageError
from sftgate.io import gcs
from sftgate.io.sources import Source, open_source

MiB = 1 << 20


def jsonl(n: int, *, seed: int = 0) -> bytes:
    rng = random.Random(seed)
    words = ["alpha", "beta", "gamma", "delta", "kappa", "omega", "sigma", "theta"]
    return b"".join(
        b'{"contents": [{"role": "user", "parts": [{"text": "%d %s"}]}]}\n'
        % (i, " ".join(rng.choice(words) for _ in range(12)).encode())
        for i in range(n)
    )


def put(uri: str, data: bytes) -> gcs.ObjectInfo:
    return gcs.upload_bytes(data, uri, content_type="application/octet-stream")


# --- URIs and checksums (no server) ---------------------------------------------------------------

def test_split_and_join():
    assert gcs.split_uri("gs://my-bucket/a/b.jsonl") == ("my-bucket", "a/b.jsonl")
    assert gcs.split_uri("gs://my.bucket_1") == ("my.bucket_1", "")
    assert gcs.join("gs://b0b/out", "train.jsonl") == "gs://b0b/out/train.jsonl"
    assert gcs.join("gs://b0b/out/", "/train.jsonl") == "gs://b0b/out/train.jsonl"
    assert gcs.join("gs://b0b", "train.jsonl") == "gs://b0b/train.jsonl"
    assert gcs.join("gs://b0b/", "train.jsonl") == "gs://b0b/train.jsonl"
    assert gcs.is_gcs("gs://b0b/x") and not gcs.is_gcs(Path("data/gs.jsonl"))


@pytest.mark.parametrize(("uri", "needle"), [
    ("s3://bucket/x", "not a gs:// URI"),
    ("gs:///x.jsonl", "no bucket name"),
    ("gs://", "no bucket name"),
    ("gs://My_Bucket/x", "invalid bucket name 'My_Bucket'"),
    ("gs://b@d/x", "invalid bucket name"),
    ("gs://ab/x", "invalid bucket name 'ab'"),
    ("gs://-bucket/x", "invalid bucket name"),
    ("gs://" + "a" * 64 + "/x", "invalid bucket name"),
    ("gs://bucket/a\nb", "invalid object name"),
])
def test_split_uri_rejects(uri, needle):
    with pytest.raises(UsageError, match=needle) as caught:
        gcs.split_uri(uri)
    assert "\n" not in str(caught.value)


def test_crc32c_file_is_the_service_encoding(tmp_path):
    check = tmp_path / "check.txt"
    check.write_bytes(b"123456789")  # the CRC32C check value: 0xE3069283
    assert gcs.crc32c_file(check) == "4waSgw=="
    assert gcs.crc32c_hex("4waSgw==") == "e3069283"
    data = random.Random(1).randbytes(3 * MiB + 17)  # several hashing blocks
    big = tmp_path / "big.bin"
    big.write_bytes(data)
    assert gcs.crc32c_hex(gcs.crc32c_file(big)) == f"{google_crc32c.value(data):08x}"


def test_missing_extra_is_one_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "google.cloud.storage", None)  # `import` now fails
    with pytest.raises(SftgateError) as caught:
        gcs.stat("gs://bucket/x.jsonl")
    assert str(caught.value) == "reading or writing gs:// needs the gcs extra: pip install 'sftgate[gcs]'"
    with pytest.raises(SourceError, match=r"needs the gcs extra"):
        open_source("gs://bucket/x.jsonl")


def test_missing_credentials_is_one_line(monkeypatch, tmp_path):
    pytest.importorskip("google.cloud.storage")
    monkeypatch.setattr(gcs, "_clients", {})
    monkeypatch.delenv("STORAGE_EMULATOR_HOST", raising=False)
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "no-such-key.json"))
    with pytest.raises(SftgateError) as caught:
        gcs.stat("gs://bucket/x.jsonl")
    assert "gcloud auth application-default login" in str(caught.value)
    assert "GOOGLE_APPLICATION_CREDENTIALS" in str(caught.value)


# --- uploads --------------------------------------------------------------------------------------

def test_upload_small_file(gcs_bucket, tmp_path):
    path = tmp_path / "train.jsonl"
    path.write_bytes(jsonl(50))
    uri = f"gs://{gcs_bucket}/out/train.jsonl"
    info = gcs.upload_file(path, uri)
    assert info.uri == uri and info.size == path.stat().st_size
    assert info.crc32c == gcs.crc32c_file(path)
    assert isinstance(info.generation, int)
    assert gcs.stat(uri) == info  # what the server reports, read back
    with gcs.open_read(uri) as reader:
        assert reader.read() == path.read_bytes()


def test_upload_large_file_in_resumable_chunks(gcs_bucket, tmp_path, monkeypatch):
    monkeypatch.setattr(gcs, "CHUNK_SIZE", 1 * MiB)
    path = tmp_path / "big.jsonl"
    data = jsonl(1000) * 100  # ~10 MiB: above the client's 8 MiB single-request limit
    path.write_bytes(data)
    session = gcs._client()._http
    sent = []
    real_request = session.request

    def counting(method, url, *args, **kwargs):
        if "upload_id=" in url:
            sent.append(method)
        return real_request(method, url, *args, **kwargs)

    monkeypatch.setattr(session, "request", counting)
    uri = f"gs://{gcs_bucket}/out/big.jsonl"
    info = gcs.upload_file(path, uri)
    assert len(sent) >= len(data) // MiB  # one request per 1 MiB chunk
    assert info.size == len(data) and info.crc32c == gcs.crc32c_file(path)
    assert gcs.stat(uri) == info


def test_upload_bytes(gcs_bucket):
    uri = f"gs://{gcs_bucket}/out/manifest.json"
    manifest = b'{"shards": []}\n'
    info = gcs.upload_bytes(manifest, uri, content_type="application/json")
    assert info.size == len(manifest)
    assert gcs.crc32c_hex(info.crc32c) == f"{google_crc32c.value(manifest):08x}"
    assert gcs.stat(uri) == info


@pytest.mark.parametrize("size", [4096, 9 * MiB], ids=["single-request", "resumable"])
def test_upload_that_fails_verification_leaves_no_object(gcs_bucket, tmp_path, monkeypatch, size):
    monkeypatch.setattr(gcs, "CHUNK_SIZE", 4 * MiB)
    path = tmp_path / "shard.jsonl"
    path.write_bytes(random.Random(size).randbytes(size))
    # The local checksum says one thing, the bytes that reach the server another: what a file
    # changed during the upload, or corrupted on the way, looks like.
    monkeypatch.setattr(gcs, "crc32c_file", lambda p: "AAAAAA==")
    uri = f"gs://{gcs_bucket}/out/shard.jsonl"
    with pytest.raises(SftgateError, match=r"upload failed verification") as caught:
        gcs.upload_file(path, uri)
    assert str(caught.value).startswith(uri) and "\n" not in str(caught.value)
    assert gcs.stat(uri) is None
    assert gcs.list_prefix(f"gs://{gcs_bucket}") == []


def test_upload_to_missing_bucket(gcs_server, tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_bytes(b"{}\n")
    with pytest.raises(SftgateError, match=r"^gs://no-such-bucket-0/x.jsonl: no such bucket gs://no-such-bucket-0$"):
        gcs.upload_file(path, "gs://no-such-bucket-0/x.jsonl")


# --- stat, stat_many, list_prefix, delete ------------------------------------------------------------

def test_stat_and_delete(gcs_bucket):
    uri = f"gs://{gcs_bucket}/a.jsonl"
    assert gcs.stat(uri) is None
    info = put(uri, b"{}\n")
    assert gcs.stat(uri) == info
    gcs.delete(uri)
    assert gcs.stat(uri) is None
    gcs.delete(uri)  # already gone: not an error
    with pytest.raises(SftgateError, match=r"no such bucket gs://no-such-bucket-0$"):
        gcs.stat("gs://no-such-bucket-0/a.jsonl")
    with pytest.raises(UsageError, match=r"names a bucket, not an object"):
        gcs.stat(f"gs://{gcs_bucket}")


def test_stat_many_lists_big_directories_and_stats_the_rest(gcs_bucket, monkeypatch):
    root = f"gs://{gcs_bucket}"
    shards = [f"{root}/out/train-{i:05d}.jsonl" for i in range(40)]
    uploaded = {uri: put(uri, f"shard {i}\n".encode()) for i, uri in enumerate(shards)}
    uploaded[f"{root}/out/sub/deeper.jsonl"] = put(f"{root}/out/sub/deeper.jsonl", b"deep\n")
    uploaded[f"{root}/top.jsonl"] = put(f"{root}/top.jsonl", b"top\n")
    missing = [f"{root}/out/train-{i:05d}.jsonl" for i in range(40, 45)] + [f"{root}/out/zzz.jsonl",
                                                                             f"{root}/elsewhere/x.jsonl"]
    listed = []
    real_list_group = gcs._list_group
    monkeypatch.setattr(gcs, "_list_group", lambda *a: listed.append(a[1]) or real_list_group(*a))

    wanted = [missing[0], *reversed(shards), f"{root}/top.jsonl", f"{root}/out/sub/deeper.jsonl",
              *missing[1:], shards[3]]
    result = gcs.stat_many(wanted, workers=4)
    assert listed == ["out"]  # 40+ wanted names under out/: one listing; the rest single requests
    assert list(result) == list(dict.fromkeys(wanted))  # input order, duplicates once
    assert {uri: info for uri, info in result.items() if info is not None} == uploaded
    assert all(result[uri] is None for uri in missing)
    assert result == {uri: gcs.stat(uri) for uri in result}
    with pytest.raises(SftgateError, match=r"no such bucket gs://no-such-bucket-0"):
        gcs.stat_many([*shards[:3], "gs://no-such-bucket-0/x.jsonl"])


def test_list_prefix_treats_the_prefix_as_a_directory(gcs_bucket):
    root = f"gs://{gcs_bucket}"
    for name in ["out/b.jsonl", "out/a.jsonl", "out/sub/c.jsonl", "out-other/d.jsonl", "top.jsonl"]:
        put(f"{root}/{name}", name.encode())
    under_out = [f"{root}/out/a.jsonl", f"{root}/out/b.jsonl", f"{root}/out/sub/c.jsonl"]
    assert [info.uri for info in gcs.list_prefix(f"{root}/out")] == under_out
    assert [info.uri for info in gcs.list_prefix(f"{root}/out/")] == under_out
    assert len(gcs.list_prefix(root)) == 5
    assert gcs.list_prefix(f"{root}/nothing-here") == []
    assert gcs.list_prefix(f"{root}/out")[0].size == len(b"out/a.jsonl")
    with pytest.raises(SftgateError, match=r"no such bucket"):
        gcs.list_prefix("gs://no-such-bucket-0/out")


# --- reading: open_read and gs:// sources --------------------------------------------------------

def test_gzip_object_streams_through_open_source(gcs_bucket, monkeypatch):
    monkeypatch.setattr(gcs, "READ_CHUNK_SIZE", 256 * 1024)  # several ranged GETs
    data = jsonl(60_000, seed=3)
    packed = gzip.compress(data, compresslevel=1)
    assert len(packed) > 3 * gcs.READ_CHUNK_SIZE
    uri = f"gs://{gcs_bucket}/in/train.jsonl.gz"
    put(uri, packed)
    source = open_source(uri)
    assert (source.name, source.uri, source.size, source.compression) == (uri, uri, len(packed), "gzip")
    assert source.path.name == "train.jsonl.gz" and source.remote and not source.seekable
    with source.open() as stream:
        chunks = iter(lambda: stream.read(64 * 1024), b"")
        assert b"".join(chunks) == data
    with source.open_raw() as raw:
        assert raw.read() == packed


def test_plain_object_source_is_not_seekable_and_pickles(gcs_bucket):
    data = jsonl(10)
    uri = f"gs://{gcs_bucket}/in/val.jsonl"
    info = put(uri, data)
    source = open_source(uri)
    assert source.compression is None and not source.seekable and source.generation == info.generation
    again = pickle.loads(pickle.dumps(source))
    assert again == source
    with again.open() as stream:
        assert stream.read() == data


def _read_in_child(source: Source) -> bytes:
    with source.open() as stream:
        return stream.read()


def test_a_forked_worker_reads_with_its_own_client(gcs_bucket):
    uri = f"gs://{gcs_bucket}/in/train.jsonl"
    put(uri, jsonl(5))
    source = open_source(uri)  # the parent's client now exists
    with multiprocessing.get_context("fork").Pool(1) as pool:
        assert pool.apply(_read_in_child, (source,)) == jsonl(5)


def test_a_subprocess_inherits_the_emulator(gcs_bucket):
    uri = f"gs://{gcs_bucket}/in/x.jsonl"
    put(uri, b"{}\n")
    code = f"from sftgate.io import gcs; print(gcs.stat({uri!r}).size)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "3"


def test_empty_object_source(gcs_bucket):
    uri = f"gs://{gcs_bucket}/in/empty.jsonl"
    put(uri, b"")
    source = open_source(uri)
    assert source.size == 0 and source.compression is None
    with source.open() as stream:
        assert stream.read() == b""


def test_missing_inputs_are_source_errors(gcs_bucket):
    with pytest.raises(SourceError) as caught:
        open_source(f"gs://{gcs_bucket}/x.jsonl")
    assert str(caught.value) == f"gs://{gcs_bucket}/x.jsonl: no such object"
    with pytest.raises(SourceError, match=r"^gs://no-such-bucket-0/x.jsonl: no such bucket gs://no-such-bucket-0$"):
        open_source("gs://no-such-bucket-0/x.jsonl")
    with pytest.raises(SourceError, match=r": no such object$"):
        gcs.open_read(f"gs://{gcs_bucket}/x.jsonl")
    with pytest.raises(SourceError, match=r"not a JSONL object"):
        open_source(f"gs://{gcs_bucket}/folder/")
    with pytest.raises(SourceError, match=r"invalid bucket name"):
        open_source("gs://Bad_Bucket/x.jsonl")


def test_an_object_deleted_while_being_read(gcs_bucket):
    uri = f"gs://{gcs_bucket}/in/train.jsonl"
    put(uri, jsonl(5))
    source = open_source(uri)
    gcs.delete(uri)
    with source.open() as stream, pytest.raises(SourceError, match=r"generation \d+ is gone"):
        stream.read()


def test_local_sources_are_unchanged(tmp_path):
    path = tmp_path / "train.jsonl"
    path.write_bytes(jsonl(3))
    source = open_source(path)
    assert source.uri is None and not source.remote and source.seekable and source.path == path
    with source.open() as stream:
        assert stream.read() == jsonl(3)
    assert os.fspath(source.path) == str(path)
