"""What ``tests/integration/offhours/test_service.py`` and ``tests/integration/offhours/test_watch.py`` share (they were one module, tests/integration/test_watch.py).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import orjson

from tests.support.workers import ROOT

DEADLINE = 30.0


@dataclass
class WatchProcess:
    """One ``python -m offhours decisions ...`` child; threads keep its stdout and stderr lines."""

    process: subprocess.Popen[bytes]
    lines: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    watching: threading.Event = field(default_factory=threading.Event)
    readers: list[threading.Thread] = field(default_factory=list)

    def __post_init__(self) -> None:
        for stream, into in ((self.process.stdout, self.lines), (self.process.stderr, self.errors)):
            reader = threading.Thread(target=self._read, args=(stream, into), daemon=True)
            reader.start()
            self.readers.append(reader)

    def _read(self, stream: object, into: list[str]) -> None:
        for line in stream:  # type: ignore[attr-defined]
            text = line.decode().rstrip("\n")
            into.append(text)
            if into is self.errors and text.startswith("watching "):
                self.watching.set()

    @classmethod
    def spawn(cls, arguments: Sequence[str]) -> WatchProcess:
        """Run ``offhours`` with ``arguments`` (``decisions ...``), with no OFFHOURS_* settings."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("OFFHOURS_")}
        env["PYTHONPATH"] = str(ROOT)
        process = subprocess.Popen(
            [sys.executable, "-m", "offhours", *arguments],
            env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        return cls(process)

    async def wait_watching(self) -> None:
        """Until the command holds its start positions (its ``watching`` line)."""
        if not await asyncio.to_thread(self.watching.wait, DEADLINE):
            raise AssertionError(f"offhours decisions did not start: {self.errors}")

    async def wait_lines(self, count: int) -> list[dict[str, object]]:
        """The first ``count`` decisions printed, once that many are."""
        end = time.monotonic() + DEADLINE
        while len(self.lines) < count:
            if time.monotonic() > end or self.process.poll() is not None and len(self.lines) < count:
                raise AssertionError(f"expected {count} decisions, got {self.lines}; stderr: {self.errors}")
            await asyncio.sleep(0.05)
        return [orjson.loads(line) for line in self.lines[:count]]

    def interrupt(self) -> int:
        """Ctrl-C; the exit code."""
        self.process.send_signal(signal.SIGINT)
        return self.finish()

    def finish(self) -> int:
        """Wait for the exit and for the last line read; the exit code."""
        try:
            code = self.process.wait(DEADLINE)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError(f"offhours decisions did not stop; stderr: {self.errors}") from None
        for reader in self.readers:
            reader.join(DEADLINE)
        return code

    def decisions(self) -> list[dict[str, object]]:
        return [orjson.loads(line) for line in self.lines]

