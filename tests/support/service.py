"""What ``tests/integration/offhours/test_durable.py`` and ``tests/integration/offhours/test_service.py`` share (they were one module, tests/integration/test_service.py).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import orjson

from streams.settings import Settings
from tests.support.workers import ROOT, worker_env

GENERIC_SECRET = "generic-webhook-secret"


TOKEN = "ops-test-token"


START_TIMEOUT = 90.0


DEADLINE = 30.0


T = TypeVar("T")


@dataclass
class ServiceProcess:
    """One ``python -m offhours ...`` child; a thread reads its stdout for the web URL."""

    process: subprocess.Popen[bytes]
    log_path: Path
    lines: list[str] = field(default_factory=list)
    ready: threading.Event = field(default_factory=threading.Event)
    base_url: str | None = None

    def __post_init__(self) -> None:
        threading.Thread(target=self._read_stdout, daemon=True).start()

    def _read_stdout(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            text = line.decode().rstrip()
            self.lines.append(text)
            found = re.match(r"web:\s+(http://\S+)", text)
            if found:
                self.base_url = found.group(1)
            if text.startswith("ready;"):
                self.ready.set()

    @classmethod
    def spawn(cls, command: str, settings: Settings, log_path: Path, env: dict[str, str] | None = None) -> ServiceProcess:
        env = env or service_env(settings)
        process = subprocess.Popen(
            [sys.executable, "-m", "offhours", command, "--port", "0"],
            env=env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=log_path.open("wb"),
        )
        return cls(process, log_path)

    async def wait_ready(self) -> str:
        """The base URL once the process printed ``ready``; fails at once if it exits first."""
        deadline = time.monotonic() + START_TIMEOUT
        while not await asyncio.to_thread(self.ready.wait, 0.5):
            if self.process.poll() is not None or time.monotonic() > deadline:
                break
        if not self.ready.is_set() or self.base_url is None:
            raise AssertionError(f"service did not start (exit code {self.process.poll()}):\n{self.output()}")
        return self.base_url

    def stop(self, timeout: float = 30.0) -> int | None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def output(self) -> str:
        return "\n".join(self.lines) + "\n--- stderr ---\n" + self.log_path.read_text(errors="replace")[-4000:]


def service_env(settings: Settings) -> dict[str, str]:
    """The environment of a service process on ``settings``, with a webhook secret and a token."""
    env = worker_env(settings)
    env["OFFHOURS_OPS__AUDIT_TOPIC"] = f"{settings.app_id}.audit"
    env["OFFHOURS_OPS__ACTIONS_TOPIC"] = f"{settings.app_id}.actions"
    env["OFFHOURS_OPS__TOKENS"] = orjson.dumps({"ops:test": TOKEN}).decode()
    env["OFFHOURS_OPS__LINK_SECRET"] = "link-secret-for-tests"
    env["OFFHOURS_EDGE__GENERIC_SECRET"] = GENERIC_SECRET
    return env


def signed(events: list[dict[str, object]] | dict[str, object]) -> tuple[bytes, dict[str, str]]:
    """A generic webhook body and its ``X-Offhours-Signature`` header."""
    body = orjson.dumps(events)
    digest = hmac.new(GENERIC_SECRET.encode(), body, hashlib.sha256).hexdigest()
    return body, {"X-Offhours-Signature": f"sha256={digest}", "Content-Type": "application/json"}


def event(event_id: str) -> dict[str, object]:
    """A customer DM to the Italian team on a Sunday night (closed)."""
    return {
        "id": event_id, "account": "acme.it.facebook", "channel": "facebook", "kind": "dm",
        "conversation": f"fb:PAGE_111:{event_id}",
        "author": {"id": "PSID_222", "name": "Ana Lopez", "followers": 120},
        "text": "Il mio ordine non è arrivato", "lang": "it",
        "at": "2026-11-22T21:14:05Z", "in_reply_to": None,
    }


async def until(probe: Callable[[], Awaitable[T | None]], what: str, deadline: float = DEADLINE) -> T:
    """The first non-None answer of ``probe``, polled until ``deadline`` seconds have passed."""
    end = time.monotonic() + deadline
    while True:
        answer = await probe()
        if answer is not None:
            return answer
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.2)

