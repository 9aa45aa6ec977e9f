"""A real Cloud Storage JSON API on loopback for the tests: `gcp-storage-emulator` in a subprocess.

`gcs_server` (session) starts one in-memory emulator on 127.0.0.1, sets `STORAGE_EMULATOR_HOST`
for the rest of the session (subprocesses inherit it) and stops the server at the end.
`gcs_bucket` (function) creates a fresh, empty bucket and gives its name. Both skip the test when
`gcp_storage_emulator` or `google-cloud-storage` is not installed (the `dev` extra has both).

Run as a script, this file is the emulator process itself: it binds port 0, prints the port it
got (no race for a "free" port) and serves until its stdin closes, so it dies with the test run
even when pytest is killed.
"""

from __future__ import annotations

import importlib.util
import os
import select
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, Any

import pytest

HOST = "127.0.0.1"
PROJECT = "sftgate-test"
STARTUP_TIMEOUT = 20.0


@dataclass
class GcsServer:
    """A running emulator: `host` is what `STORAGE_EMULATOR_HOST` holds (`http://127.0.0.1:PORT`)."""

    host: str
    process: subprocess.Popen[bytes]
    _client: Any = field(default=None, repr=False)

    def bucket(self, name: str) -> str:
        """Create bucket `name` on the emulator and return the name."""
        if self._client is None:
            from google.cloud import storage

            self._client = storage.Client(project=PROJECT)
        self._client.create_bucket(name)
        return name


def _missing_requirement() -> str | None:
    for module, package in (("gcp_storage_emulator", "gcp-storage-emulator"),
                            ("google.cloud.storage", "google-cloud-storage")):
        try:
            found = importlib.util.find_spec(module) is not None
        except ModuleNotFoundError:
            found = False
        if not found:
            return f"needs {package} (pip install -e '.[dev]')"
    return None


def _start() -> GcsServer:
    with tempfile.TemporaryFile() as log:  # a file, not a pipe: a chatty child never blocks on it
        process = subprocess.Popen([sys.executable, os.path.abspath(__file__)],
                                   stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log)
        return _wait_ready(process, log)


def _wait_ready(process: subprocess.Popen[bytes], log: IO[bytes]) -> GcsServer:
    assert process.stdout is not None
    deadline = time.monotonic() + STARTUP_TIMEOUT
    ready, _, _ = select.select([process.stdout], [], [], STARTUP_TIMEOUT)
    port_line = process.stdout.readline() if ready else b""
    if not port_line.strip().isdigit():
        _stop(process)
        raise RuntimeError(f"gcp-storage-emulator did not start within {STARTUP_TIMEOUT:.0f} s "
                           f"(exit code {process.returncode}): {_tail(log)}")
    host = f"http://{HOST}:{int(port_line)}"
    while True:
        try:
            with urllib.request.urlopen(host + "/", timeout=2) as answer:
                if answer.status == 200:
                    return GcsServer(host=host, process=process)
        except OSError:
            pass
        if time.monotonic() > deadline or process.poll() is not None:
            _stop(process)
            raise RuntimeError(f"gcp-storage-emulator at {host} did not answer within "
                               f"{STARTUP_TIMEOUT:.0f} s: {_tail(log)}")
        time.sleep(0.05)


def _tail(log: IO[bytes]) -> str:
    log.seek(0)
    return log.read().decode(errors="replace")[-2000:]


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.stdin is not None and not process.stdin.closed:
        process.stdin.close()  # the child's cue to shut down
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)
    if process.stdout is not None:
        process.stdout.close()


@pytest.fixture(scope="session")
def gcs_server() -> Iterator[GcsServer]:
    """One in-memory emulator for the session, with `STORAGE_EMULATOR_HOST` pointing at it."""
    if (reason := _missing_requirement()) is not None:
        pytest.skip(reason)
    server = _start()
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("STORAGE_EMULATOR_HOST", server.host)
            yield server
    finally:
        _stop(server.process)


@pytest.fixture
def gcs_bucket(gcs_server: GcsServer) -> str:
    """A new empty bucket on the session's emulator, unique to the test."""
    return gcs_server.bucket(f"sftgate-{uuid.uuid4().hex[:16]}")


def _serve() -> None:
    import logging
    import socketserver

    # The emulator serves one request at a time; the default listen backlog of 5 would drop the
    # SYNs of 16 concurrent clients and stall each by a TCP retransmit (1 s).
    socketserver.TCPServer.request_queue_size = 128
    logging.basicConfig(level=logging.CRITICAL)
    from gcp_storage_emulator.server import create_server

    server = create_server(HOST, 0, in_memory=True)
    server.start()
    print(server._api._httpd.server_address[1], flush=True)
    try:
        sys.stdin.buffer.read()  # returns at EOF: the test session ended or died
    finally:
        server.stop()


if __name__ == "__main__":
    _serve()
