"""The common machinery of the fake platforms: serve, record, fail on request."""

from __future__ import annotations

import asyncio
import logging
import random
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal

import orjson
from aiohttp import web

FailureKind = Literal["rate_limit", "server_error", "permanent", "ops_alert"]
FAILURE_KINDS: tuple[FailureKind, ...] = ("rate_limit", "server_error", "permanent", "ops_alert")
TRANSIENT_KINDS: tuple[FailureKind, ...] = ("rate_limit", "server_error")

log = logging.getLogger("responders.fakes")


@dataclass(frozen=True, slots=True)
class Recorded:
    """One request as the fake received it."""

    method: str
    path: str
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)


@dataclass(frozen=True, slots=True)
class Answered:
    """One request and the HTTP status the fake answered it with."""

    request: Recorded
    status: int

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


def json_response(
    data: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    return web.Response(
        body=orjson.dumps(data), status=status, content_type="application/json", headers=headers
    )


def parse_json(body: bytes) -> dict[str, Any] | None:
    """The body as a JSON object, or None when it is not one."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    return data if isinstance(data, dict) else None


class FakePlatform:
    """A real aiohttp server on 127.0.0.1 (free port) that records every request.

    Subclasses add their routes in :meth:`add_routes`; their handlers call
    :meth:`record` first and answer :meth:`take_failure` when it names one.
    ``answers`` pairs each recorded request with the status it got; ``faults_injected``
    counts the failures answered on request (queued or random). Every request is
    logged on the ``responders.fakes`` logger at INFO (method, route pattern, status,
    body; never the headers or the path, which carry credentials).
    """

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.answers: list[Answered] = []
        self.faults_injected = 0
        self._failures: deque[FailureKind] = deque()
        self._random_failures: tuple[float, Sequence[FailureKind], random.Random] | None = None
        self._arrived = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self.port: int | None = None

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` — the base URL to configure the adapter with."""
        if self.port is None:
            raise RuntimeError("fake platform not started")
        return f"http://127.0.0.1:{self.port}"

    def add_routes(self, app: web.Application) -> None:
        raise NotImplementedError

    def fail_next(self, kind: FailureKind, times: int = 1) -> None:
        """Answer the next ``times`` requests with this platform's ``kind`` of error."""
        self._failures.extend([kind] * times)

    def fail_at_random(
        self,
        rate: float,
        kinds: Sequence[FailureKind] = TRANSIENT_KINDS,
        rng: random.Random | None = None,
    ) -> None:
        """Answer each request (once the ``fail_next`` queue is empty) with one of
        ``kinds``, chosen by ``rng``, with probability ``rate``; 0 turns it off."""
        self._random_failures = (rate, tuple(kinds), rng or random.Random()) if rate > 0 else None

    async def record(self, request: web.Request) -> Recorded:
        recorded = Recorded(
            request.method, request.path, dict(request.headers), await request.read()
        )
        async with self._arrived:
            self.requests.append(recorded)
            self._arrived.notify_all()
        return recorded

    def take_failure(self) -> FailureKind | None:
        """The failure to answer the current request with, or None to serve it."""
        if self._failures:
            self.faults_injected += 1
            return self._failures.popleft()
        if self._random_failures is not None:
            rate, kinds, rng = self._random_failures
            if rng.random() < rate:
                self.faults_injected += 1
                return rng.choice(kinds)
        return None

    @web.middleware
    async def _answered(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        status = 500
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        finally:
            await self._answer(request, status)

    async def _answer(self, request: web.Request, status: int) -> None:
        body = await request.read()
        # The route's pattern, not the path: paths carry secrets (Slack webhook paths,
        # Telegram's /bot<token>/), and logs never show a secret, even a fake's.
        resource = request.match_info.route.resource
        where = resource.canonical if resource is not None else "(no route)"
        log.info("%s %s %s -> %s %s", type(self).__name__, request.method, where, status,
                 body.decode("utf-8", "replace")[:2000])
        async with self._arrived:
            self.answers.append(
                Answered(Recorded(request.method, request.path, dict(request.headers), body), status)
            )
            self._arrived.notify_all()

    async def wait_until(self, done: Callable[[FakePlatform], bool], timeout: float = 5.0) -> None:
        """Wait until ``done(self)`` holds, checked after each request is answered."""
        async with self._arrived:
            await asyncio.wait_for(self._arrived.wait_for(lambda: done(self)), timeout)

    async def wait_for_requests(self, count: int, timeout: float = 5.0) -> list[Recorded]:
        """Wait until at least ``count`` requests arrived; return them all."""
        async with self._arrived:
            await asyncio.wait_for(
                self._arrived.wait_for(lambda: len(self.requests) >= count), timeout
            )
            return list(self.requests)

    async def start(self, port: int = 0) -> FakePlatform:
        """Serve on 127.0.0.1:``port`` (0: a free port, see :attr:`url`)."""
        app = web.Application(middlewares=[self._answered])
        self.add_routes(app)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port)
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakePlatform:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
