"""What a run says while it goes: a progress bar on a terminal, a line per pass with -v, else nothing.

The engine calls `phase` when a pass starts (checking a file, finding duplicates, writing the
outputs), `advance` as chunks of it finish, and `close` at the end. The base class says nothing,
so a library call or a CI log stays quiet unless asked.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    """The silent reporter, and the interface the others implement."""

    def phase(self, name: str, total_bytes: int | None = None) -> None:
        """A pass starts; `total_bytes` when its size is known (a plain file's size)."""

    def advance(self, nbytes: int, records: int) -> None:
        """Some of the current pass is done: `nbytes` more bytes, `records` more lines."""

    def end_pass(self) -> None:
        """The current pass is over, and no other starts yet."""

    def close(self) -> None:
        """The run is over (or failed): end the current pass, put the terminal back."""


class _Timed(Progress):
    """Keeps the current pass's name, start time and totals."""

    def __init__(self) -> None:
        self.name: str | None = None
        self.started = 0.0
        self.nbytes = 0
        self.records = 0

    def phase(self, name: str, total_bytes: int | None = None) -> None:
        self.end_pass()
        self.name, self.started, self.nbytes, self.records = name, time.perf_counter(), 0, 0

    def advance(self, nbytes: int, records: int) -> None:
        self.nbytes += nbytes
        self.records += records

    def close(self) -> None:
        self.end_pass()

    def end_pass(self) -> None:
        if self.name is not None:
            self.finished(self.name, time.perf_counter() - self.started)
        self.name = None

    def finished(self, name: str, seconds: float) -> None:
        """Called once per pass when it ends."""


class PassLog(_Timed):
    """`-v`: one line per pass on stderr, with its size, time and rate. Fine in CI logs."""

    def __init__(self, stream: TextIO | None = None) -> None:
        super().__init__()
        self.stream = stream or sys.stderr

    def finished(self, name: str, seconds: float) -> None:
        line = f"sftgate: {name}: {seconds:.2f} s"
        if self.records:
            rate = self.nbytes / 1e6 / seconds if seconds > 0 else float("inf")
            line += (f", {self.nbytes / 1e6:,.1f} MB, {self.records:,} lines "
                     f"({rate:,.1f} MB/s, {self.records / seconds if seconds > 0 else 0:,.0f} lines/s)")
        print(line, file=self.stream, flush=True)


class Bar(_Timed):
    """A rich progress bar on stderr (a terminal): MB and lines per second, per pass.

    rich is imported here only, when a terminal asks for a bar."""

    def __init__(self) -> None:
        super().__init__()
        from rich.console import Console
        from rich.progress import BarColumn, DownloadColumn, TextColumn, TimeElapsedColumn, TransferSpeedColumn
        from rich.progress import Progress as RichProgress

        self._bar = RichProgress(
            TextColumn("[bold]{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
            TextColumn("{task.fields[lines]:,} lines"), TimeElapsedColumn(),
            console=Console(stderr=True), transient=True,
        )
        self._bar.start()
        self._task: int | None = None

    def phase(self, name: str, total_bytes: int | None = None) -> None:
        super().phase(name, total_bytes)
        self._task = self._bar.add_task(name, total=total_bytes, lines=0)

    def advance(self, nbytes: int, records: int) -> None:
        super().advance(nbytes, records)
        if self._task is not None:
            self._bar.update(self._task, advance=nbytes, lines=self.records)

    def finished(self, name: str, seconds: float) -> None:
        if self._task is not None:
            self._bar.remove_task(self._task)
            self._task = None

    def close(self) -> None:
        self.end_pass()
        self._bar.stop()
