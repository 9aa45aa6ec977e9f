"""`sftgate prepare` from and to Cloud Storage, against a real GCS API on loopback
(`gcp-storage-emulator`, see gcs_server.py), through the real `google-cloud-storage` client."""

from __future__ import annotations

import base64
import gzip
import json
import os
import signal
import subprocess
import sys
import time

import google_crc32c
import pytest

from sftgate.engine.prepare import prepare
from sftgate.errors import UsageError
from sftgate.io import gcs


def _upload(data: bytes, uri: str) -> None:
    info = gcs.upload_bytes(data, uri, content_type="application/jsonl")
    assert info.size == len(data)


def _names(prefix: str) -> list[str]:
    return [info.uri[len(prefix) + 1:] for info in gcs.list_prefix(prefix)]


def _read(uri: str) -> bytes:
    with gcs.open_read(uri) as fh:
        return fh.read()


def _records(records, n: int) -> bytes:
    rows = []
    for i in range(n):
        rows.append({"contents": [{"role": "user", "parts": [{"text": f"What is {i} plus {i + 7}?"}]},
                                  {"role": "model", "parts": [{"text": f"{i} plus {i + 7} is {2 * i + 7}."}]}]})
    rows.append(records.model_twice(0))  # STR002: quarantined
    return b"".join(records.line(r) + b"\n" for r in rows)


def test_prepare_reads_and_writes_gcs(gcs_bucket, records, tmp_path):
    data = _records(records, 30)
    _upload(gzip.compress(data), f"gs://{gcs_bucket}/in/train.jsonl.gz")
    out = f"gs://{gcs_bucket}/out/run1"
    done = prepare(f"gs://{gcs_bucket}/in/train.jsonl.gz", out=out, split_validation=5, workers=1)
    assert _names(out) == ["manifest.json", "quarantine.jsonl", "report.json", "train.jsonl", "validation.jsonl"]
    manifest = json.loads(_read(f"{out}/manifest.json"))
    assert manifest == done.manifest
    for entry in manifest["outputs"]:
        stored = _read(entry["uri"])
        crc = base64.b64encode(google_crc32c.Checksum(stored).digest()).decode()
        assert (len(stored), crc) == (entry["bytes"], entry["crc32c"])
        assert gcs.stat(entry["uri"]).crc32c == entry["crc32c"]
    counts = manifest["counts"]
    assert (counts["train_examples"] + counts["validation_examples"], counts["quarantined"]) == (30, 1)
    assert manifest["inputs"][0]["path"] == f"gs://{gcs_bucket}/in/train.jsonl.gz"
    tuning = manifest["tuning"]
    assert tuning["training_dataset_uri"] == f"{out}/train.jsonl" and tuning["upload"] is None
    assert tuning["validation_dataset_uri"] == f"{out}/validation.jsonl"
    # the same run on local disk writes the same bytes
    local = tmp_path / "local"
    src = tmp_path / "train.jsonl.gz"
    src.write_bytes(gzip.compress(data))
    prepare(src, out=local, split_validation=5, workers=1)
    for name in ("train.jsonl", "validation.jsonl"):
        assert _read(f"{out}/{name}") == (local / name).read_bytes()


def test_a_finished_gcs_run_is_not_overwritten_without_overwrite(gcs_bucket, records):
    _upload(_records(records, 5), f"gs://{gcs_bucket}/train.jsonl")
    out = f"gs://{gcs_bucket}/out"
    prepare(f"gs://{gcs_bucket}/train.jsonl", out=out, workers=1)
    with pytest.raises(UsageError, match="finished run"):
        prepare(f"gs://{gcs_bucket}/train.jsonl", out=out, workers=1)
    _upload(b"x", f"gs://{gcs_bucket}/other/notes.txt")
    with pytest.raises(UsageError, match="not empty .*notes.txt"):
        prepare(f"gs://{gcs_bucket}/train.jsonl", out=f"gs://{gcs_bucket}/other", workers=1)
    again = prepare(f"gs://{gcs_bucket}/train.jsonl", out=out, workers=1, overwrite=True)
    assert all(o["reused"] for o in again.manifest["outputs"] if o["role"] != "report")


def test_an_interrupted_upload_resumes(gcs_bucket, records, monkeypatch):
    """Deterministic: the run stops at its fourth upload; the rerun sends only what is missing."""
    _upload(_records(records, 20), f"gs://{gcs_bucket}/train.jsonl")
    out = f"gs://{gcs_bucket}/out"
    real = gcs.upload_file
    sent: list[str] = []

    def interrupted(path, uri, **kw):
        if len(sent) == 3:
            raise KeyboardInterrupt
        sent.append(uri)
        return real(path, uri, **kw)

    monkeypatch.setattr(gcs, "upload_file", interrupted)
    with pytest.raises(KeyboardInterrupt):
        prepare(f"gs://{gcs_bucket}/train.jsonl", out=out, workers=1, max_shard_examples=4)
    assert "manifest.json" not in _names(out) and len(_names(out)) == 3
    monkeypatch.setattr(gcs, "upload_file", real)
    done = prepare(f"gs://{gcs_bucket}/train.jsonl", out=out, workers=1, max_shard_examples=4)
    reused = [o["name"] for o in done.manifest["outputs"] if o["reused"]]
    assert reused == [uri.rsplit("/", 1)[1] for uri in sent]
    assert _names(out)[-1] == "train-00004-of-00005.jsonl" and "manifest.json" in _names(out)


def test_a_killed_process_resumes(gcs_bucket, records, tmp_path):
    """The real thing: SIGKILL while shards are uploading; the rerun finishes the job."""
    _upload(_records(records, 400), f"gs://{gcs_bucket}/train.jsonl")
    out = f"gs://{gcs_bucket}/out"
    cmd = [sys.executable, "-m", "sftgate", "prepare", f"gs://{gcs_bucket}/train.jsonl", "--out", out,
           "--max-shard-examples", "1", "--workers", "1", "--select", "FMT,SCH,STR"]
    process = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=dict(os.environ))
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline and process.poll() is None:
            if sum(1 for n in _names(out) if n.startswith("train-")) >= 3:
                break
            time.sleep(0.01)
        assert process.poll() is None, "the run ended before it could be interrupted"
        process.send_signal(signal.SIGKILL)
        process.wait(10)
    finally:
        if process.poll() is None:
            process.kill()
    uploaded = [n for n in _names(out) if n.startswith("train-")]
    assert "manifest.json" not in _names(out) and 3 <= len(uploaded) < 400
    rerun = subprocess.run([*cmd, "--format", "json"], check=False, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 1, rerun.stderr  # STR002 fails the gate; the files are written
    manifest = json.loads(rerun.stdout)
    reused = {o["name"] for o in manifest["outputs"] if o["reused"]}
    assert set(uploaded) - reused <= {uploaded[-1]}  # all but maybe the one cut mid-upload
    assert len([n for n in _names(out) if n.startswith("train-")]) == 400
    assert manifest["counts"]["train_examples"] == 400


def test_missing_gcs_input_is_a_usage_error(gcs_bucket, tmp_path, run_cli, assert_usage_error):
    result = run_cli("prepare", f"gs://{gcs_bucket}/nothing.jsonl", "--out", tmp_path / "out")
    assert_usage_error(result, f"gs://{gcs_bucket}/nothing.jsonl", "no such object")
    result = run_cli("check", "gs:///x.jsonl")
    assert_usage_error(result, "gs:///x.jsonl")
